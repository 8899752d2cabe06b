import PQ
import Selection

/// Why one candidate row is or is not in the selection: its state, losses per epoch, φ, length bin,
/// rank in the bin and the quota it competed for. `tovd explain ID` prints it.
public struct Explanation: Sendable {
    public var candidateID: Int64
    public var lines: [String]

    public static func load(candidateID: Int64, on connection: Connection) async throws -> Explanation {
        var lines: [String] = []
        func add(_ s: String) { lines.append(s) }
        guard try await !connection.query("SELECT 1 FROM tov.candidates WHERE id = $1", [candidateID]).isEmpty else {
            return Explanation(candidateID: candidateID, lines: ["no candidate with id \(candidateID)"])
        }
        if let reject = try await connection.query("SELECT reason::text, detail, attempts FROM tov.rejects WHERE candidate_id = $1", [candidateID]).first {
            add("rejected: \(try reject.get(String.self, 0)) — \(try reject.get(String.self, 1)) (after \(try reject.get(Int32.self, 2)) attempt(s))")
            add("out: rejected rows are never scored or selected")
            return Explanation(candidateID: candidateID, lines: lines)
        }
        if try await !connection.query("""
            SELECT 1 FROM tov.base_subset b JOIN tov.base_models m USING (base_version)
            WHERE b.candidate_id = $1 AND m.status = 'complete'
            """, [candidateID]).isEmpty {
            add("in the base subset U: the surrogate trained on this row, so its loss drop is not an unbiased signal")
            add("out: U rows are never scored or selected")
            return Explanation(candidateID: candidateID, lines: lines)
        }
        let settings = try await SettingsCache.load(on: connection)
        guard let row = try await connection.query("""
            SELECT model_version, score, base_losses, val_losses, uncertainty, tokens, length_bin, rank_in_bin, bin_size,
                   eligible, selected_reason
            FROM tov.score_details WHERE candidate_id = $1
            """, [candidateID]).first else {
            let pending = try await connection.query("SELECT count(*) FROM tov.jobs WHERE candidate_id = $1", [candidateID]).first!.get(Int64.self, 0)
            add(pending > 0 ? "waiting to be scored (\(pending) job(s) queued)" : "not scored under the current model version yet (no complete model version, or rescoring)")
            return Explanation(candidateID: candidateID, lines: lines)
        }
        let base = try row.get([Float].self, 2)
        let val = try row.get([Float].self, 3)
        add("model version \(try row.get(Int32.self, 0)), score function \(settings.selection.scoreFunction.rawValue)")
        for (l, (b, v)) in zip(base, val).enumerated() {
            add("  epoch \(l + 1): ℓ(θ_bas) = \(fmt(b))  ℓ(θ_val) = \(fmt(v))  drop = \(fmt(b - v))")
        }
        add("φ = \(fmt(try row.get(Double.self, 1)))   ψ (uncertainty) = \(fmt(try row.get(Float.self, 4)))   response tokens = \(try row.get(Int32.self, 5))")
        let bin = Int(try row.get(Int64.self, 6))
        let rank = Int(try row.get(Int64.self, 7))
        let binSize = Int(try row.get(Int64.self, 8))
        let eligible = Int(try row.get(Int64.self, 9))
        let k = settings.selection.bins
        let n = settings.selection.budget.rowCount(eligible: eligible)
        add("length bin \(bin) of \(k) (\(binSize) rows), rank \(rank) by score in its bin; budget \(n) of \(eligible) eligible rows")
        let scoreRows: Int? = switch settings.selection.policy {
        case .scoreRandom: n / 2
        case .scoreOnly: n
        default: nil
        }
        if let s = scoreRows {
            let quota = s / k + (bin < s % k ? 1 : 0)
            add("score half: the top \(quota) of each bin\(bin < s % k ? " (this bin gets one of the \(s % k) extra)" : "")")
            add(rank <= quota ? "rank \(rank) ≤ \(quota): in by score" : "rank \(rank) > \(quota): not in by score")
        }
        if row.isNull(10) {
            add("out: not in the current selection (policy \(settings.selection.policy.rawValue))")
        } else {
            let reason = try row.get(String.self, 10)
            add(reason == "random" ? "in: drawn into the random half (seeded hash of the id, policy \(settings.selection.policy.rawValue))"
                                   : "in: selected by score (policy \(settings.selection.policy.rawValue))")
        }
        return Explanation(candidateID: candidateID, lines: lines)
    }

    static func fmt(_ x: some BinaryFloatingPoint) -> String {
        let d = Double(x)
        return String(Double((d * 10_000).rounded()) / 10_000)
    }
}
