import Foundation
import Testing
@testable import Evaluation

/// A results directory is reused only with the options that shaped its results; adding cells of the
/// grid (another θ0 after the first, like another policy or LR) is not a change of those options.
@Suite("Evaluation results ledger")
struct RunLedgerTests {
    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "tovd-ledger-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func options(_ theta0s: [ScoringTheta0]) -> EvaluationOptions {
        var options = EvaluationOptions(dataDirectory: "", target: "subtask061_ropes_answer_generation", outputDirectory: "")
        options.scoringTheta0s = theta0s
        return options
    }

    @Test func moreTheta0sExtendTheGridButAnotherFirstTheta0IsRefused() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var ledger = try RunLedger(directory: dir, shaping: Self.options([.pretrained, .bootstrap]).resultShapingJSON)
        _ = try ledger.value("cell") { 1.5 }
        // An options.json of a directory written before only the first θ0 shaped results.
        let old = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/options.json")))
        var written = old
        written["scoringTheta0s"] = #"["pretrained","bootstrap"]"#
        try JSONEncoder().encode(written).write(to: URL(fileURLWithPath: dir + "/options.json"))

        let extended = try RunLedger(directory: dir, shaping: Self.options([.pretrained, .bootstrap, .bootstrapPool]).resultShapingJSON)
        #expect(extended.values["cell"] == 1.5)
        #expect(throws: EvaluationError.self) {
            _ = try RunLedger(directory: dir, shaping: Self.options([.bootstrap, .pretrained]).resultShapingJSON)
        }
    }

    /// An option added after results were stored (--zval-off-target) shapes them only when set: a run
    /// recorded before it existed resumes, and one with a noisy Z_val is another run.
    @Test func aNewOptionAtItsDefaultKeepsOldRunsResumable() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plain = Self.options([.pretrained])
        #expect(plain.resultShapingJSON["zvalOffTargetShare"] == nil)
        var ledger = try RunLedger(directory: dir, shaping: plain.resultShapingJSON)
        _ = try ledger.value("run/x") { 1.0 }
        _ = try RunLedger(directory: dir, shaping: plain.resultShapingJSON)
        var noisy = plain
        noisy.zvalOffTargetShare = 0.25
        #expect(throws: EvaluationError.self) { _ = try RunLedger(directory: dir, shaping: noisy.resultShapingJSON) }
    }
}
