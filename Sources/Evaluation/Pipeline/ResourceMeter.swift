import Foundation
import Surrogate

/// Wall time and peak resident memory of one phase of the evaluation (ToV scoring, LESS-like features).
///
/// Linux keeps one high-water mark per process (VmHWM); writing "5" to /proc/self/clear_refs resets it
/// to the current RSS, so each phase's peak is its own, not the largest of the run so far. Where that
/// file cannot be written the peak is the process's so far, and the cost says so.
final class ResourceMeter {
    let started = Date()
    let resetPeak: Bool

    init() {
        resetPeak = ProcessStats.resetPeakResident()
    }

    func finish(method: String, seed: UInt64, rows: Int, bytesStored: Int) -> EvaluationReport.Cost {
        EvaluationReport.Cost(method: method, seed: seed, rows: rows, wallSeconds: Date().timeIntervalSince(started),
                              peakRSSBytes: (ProcessStats.peakResidentKilobytes() ?? 0) * 1024, bytesStored: bytesStored,
                              note: resetPeak ? "" : "peak RSS is the process's so far (could not reset it)")
    }
}
