import PQ
import Selection

/// Why one candidate row is or is not in the selection: its state, losses per epoch, φ, length bin,
/// rank in the bin and the quota it competed for, under one target's model version, settings and
/// selection. `tovd explain ID [--target T]` prints it.
public struct Explanation: Sendable {
    public var candidateID: Int64
    public var lines: [String]

    /// - Parameter target: the target whose version, settings (its own values over the global ones)
    ///   and selection explain the row; `default` is the one of a single-target database.
    public static func load(candidateID: Int64, target: String = Settings.defaultTarget, on connection: Connection) async throws -> Explanation {
        var lines: [String] = []
        func add(_ s: String) { lines.append(s) }
        guard let state = try await StatusQueries.candidateStateGet(.init(candidateID: candidateID, target: target), on: connection) else {
            return Explanation(candidateID: candidateID, lines: ["no candidate with id \(candidateID)"])
        }
        if let reason = state.rejectReason {
            add("rejected: \(reason) — \(state.rejectDetail ?? "") (after \(state.rejectAttempts ?? 0) attempt(s))")
            add("out: rejected rows are never scored or selected")
            return Explanation(candidateID: candidateID, lines: lines)
        }
        // U of the base the selection comes from; a newer base's U (a rebase in progress) only matters
        // once its version switches in.
        if state.inCurrentBaseSubset, let base = state.currentBaseVersion {
            add("in the base subset U of base model \(base): the surrogate trained on this row, so its loss drop is not an unbiased signal")
            add("out: U rows are never scored or selected")
            return Explanation(candidateID: candidateID, lines: lines)
        }
        if state.inNextBaseSubset, let next = state.nextBaseVersion {
            let phase = state.nextBaseStatus == "training" ? "being trained" : "its version being rescored"
            add("in the base subset U of base model \(next) (newer, \(phase)): not scored under it, so out once its version switches in")
        }
        let global = try await SettingsCache.load(on: connection)
        let settings = global.target(named: target)?.settings ?? global
        guard let row = try await StatusQueries.scoreDetailGet(.init(candidateID: candidateID, target: target), on: connection) else {
            let pending = state.jobsQueued
            add(pending > 0 ? "waiting to be scored (\(pending) job(s) queued)" : "not scored under the current model version yet (no complete model version, or rescoring)")
            return Explanation(candidateID: candidateID, lines: lines)
        }
        add("model version \(row.modelVersion), score function \(settings.selection.scoreFunction.rawValue)")
        for (l, (b, v)) in zip(row.baseLosses, row.valLosses).enumerated() {
            add("  epoch \(l + 1): ℓ(θ_bas) = \(fmt(b))  ℓ(θ_val) = \(fmt(v))  drop = \(fmt(b - v))")
        }
        add("φ = \(fmt(row.score))   ψ (uncertainty) = \(fmt(row.uncertainty))   response tokens = \(row.tokens)")
        let bin = row.lengthBin
        let rank = row.rankInBin
        let binSize = row.binSize
        let eligible = row.eligible
        let k = settings.selection.bins
        let n = settings.selection.budget.rowCount(eligible: eligible)
        add("length bin \(bin) of \(k) (\(binSize) rows), rank \(rank) by score in its bin; budget \(n) of \(eligible) eligible rows")
        let scoreRows: Int? = switch settings.selection.policy {
        case .scoreRandom, .scoreOnly, .scoreDSIR: settings.selection.scoreRows(budget: n)
        case .scoreOnlyUnbinned, .uncertainty, .random: nil
        }
        if let s = scoreRows {
            let quota = s / k + (bin < s % k ? 1 : 0)
            add("score half: the top \(quota) of each bin\(bin < s % k ? " (this bin gets one of the \(s % k) extra)" : "")")
            add(rank <= quota ? "rank \(rank) ≤ \(quota): in by score" : "rank \(rank) > \(quota): not in by score")
        }
        if let reason = row.selectedReason {
            let policy = settings.selection.policy.rawValue
            let line = switch reason {
            case "random": "in: drawn into the random half (seeded hash of the id, policy \(policy))"
            case "importance": "in: drawn by n-gram importance (its words against Z_val's and U's, seeded Gumbel noise; policy \(policy))"
            default: "in: selected by score (policy \(policy))"
            }
            add(line)
        } else {
            add("out: not in the current selection (policy \(settings.selection.policy.rawValue))")
        }
        return Explanation(candidateID: candidateID, lines: lines)
    }

    static func fmt(_ x: some BinaryFloatingPoint) -> String {
        let d = Double(x)
        return String(Double((d * 10_000).rounded()) / 10_000)
    }
}
