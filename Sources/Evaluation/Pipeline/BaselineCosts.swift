import Foundation

/// The measured costs of the model-free baselines (DSIR, length-matched random), in `baseline-costs.json`
/// in the output directory: their selections are cheap to recompute on a resume, but the cost a report
/// prints is the one first measured, as for the stored ToV and LESS scores.
struct BaselineCosts {
    var byMethod: [String: EvaluationReport.Cost] = [:]

    static func path(_ directory: String) -> String { directory + "/baseline-costs.json" }

    /// Empty when absent or unreadable (then measured again).
    static func load(directory: String) -> BaselineCosts {
        guard let data = FileManager.default.contents(atPath: path(directory)),
              let stored = try? JSONDecoder().decode([String: EvaluationReport.Cost].self, from: data) else { return BaselineCosts() }
        return BaselineCosts(byMethod: stored)
    }

    /// The stored cost of `method`, or `measured()` stored now.
    mutating func cost(_ method: String, directory: String, _ measured: () -> EvaluationReport.Cost) throws -> EvaluationReport.Cost {
        if let known = byMethod[method] { return known }
        let cost = measured()
        byMethod[method] = cost
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(byMethod).write(to: URL(fileURLWithPath: Self.path(directory)), options: .atomic)
        return cost
    }
}
