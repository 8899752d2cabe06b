import Foundation

/// Wall time and peak resident memory of one phase of the evaluation (ToV scoring, LESS-like features).
///
/// Linux keeps one high-water mark per process (VmHWM); writing "5" to /proc/self/clear_refs resets it
/// to the current RSS, so each phase's peak is its own, not the largest of the run so far. Where that
/// file cannot be written the peak is the process's so far, and the cost says so.
final class ResourceMeter {
    let started = Date()
    let resetPeak: Bool

    init() {
        resetPeak = (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil
    }

    func finish(method: String, seed: UInt64, rows: Int, bytesStored: Int) -> EvaluationReport.Cost {
        EvaluationReport.Cost(method: method, seed: seed, rows: rows, wallSeconds: Date().timeIntervalSince(started),
                              peakRSSBytes: Self.peakRSS(), bytesStored: bytesStored,
                              note: resetPeak ? "" : "peak RSS is the process's so far (could not reset it)")
    }

    /// VmHWM of this process in bytes (0 where /proc is not there).
    static func peakRSS() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kB = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
        return kB * 1024
    }
}
