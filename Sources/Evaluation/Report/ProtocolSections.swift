import Foundation

/// The sections of the new protocol both renderers show, as plain tables: how the target was held out,
/// the headline under its fixed rule, every comparison with its interval (per LR and tuned), the gain per
/// proxy size, and the cost of each method with what a second target reuses.
struct ReportSection {
    var title: String
    var paragraphs: [String] = []
    var tables: [(header: [String], rows: [[String]])] = []
}

extension EvaluationReport {
    /// Runs renamed by arm ("Z_val + score_random", "score_random alone", "Z_val alone"), so the per-policy
    /// grid never mixes arms; the baseline is the random policy of the primary arm when there is one.
    func armQualified() -> EvaluationReport {
        guard runs.contains(where: { $0.arm != nil }) else { return self }
        var r = self
        r.runs = runs.map { run in
            var run = run
            if let arm = run.arm { run.policy = ProtocolAnalysis.name(run.policy, arm: arm) }
            return run
        }
        let withZval = runs.contains { $0.arm == EvaluationArm.withZval.rawValue }
        r.baselinePolicy = ProtocolAnalysis.name("random", arm: withZval ? EvaluationArm.withZval.rawValue : EvaluationArm.alone.rawValue)
        return r
    }

    func protocolSections() -> [ReportSection] {
        var sections: [ReportSection] = []
        if let h = heldOut {
            var s = ReportSection(title: "Held out by dataset and by context")
            s.paragraphs.append("Target dataset `\(h.targetDataset)`: its other subtasks (\(h.siblingSubtasksExcluded.isEmpty ? "none" : h.siblingSubtasksExcluded.joined(separator: ", ")); \(h.siblingRowsExcluded) rows) are in neither the pool nor θ0's text. "
                + "The target's rows fall in \(h.targetContextGroups) groups of shared context (passage / background / situation / story); whole groups go to Z_val, then test, then the pool "
                + "(\(h.targetRowsDroppedAtBoundaries) rows of groups cut at a boundary dropped; \(h.targetRowsWithoutContext) rows have no context of \(ContextKey.minimumWords)+ words and are their own group). "
                + "\(h.contaminatedRowsSkipped) rows of other datasets containing a Z_val or test context were left out of the pool and θ0's text.")
            let o = h.overlap
            s.paragraphs.append("Measured on the split (word-for-word containment after lower-casing and dropping punctuation): \(o.isZero ? "**zero overlap**" : "**OVERLAP FOUND**").")
            s.tables.append((["held-out contexts", "count", "in a pool row", "in θ0's text", "in a Z_val row"],
                             [["test", "\(o.testContexts)", "\(o.testContextsInPool)", "\(o.testContextsInTheta0Text)", "\(o.testContextsInZval)"],
                              ["Z_val", "\(o.zvalContexts)", "\(o.zvalContextsInPool)", "\(o.zvalContextsInTheta0Text)", "–"],
                              ["rows of the target's sibling subtasks", "–", "\(o.siblingRowsInPool)", "\(o.siblingRowsInTheta0Text)", "–"]]))
            sections.append(s)
        }
        let analysis = self.analysis ?? ProtocolAnalysis(self)
        if !analysis.comparisons.isEmpty { sections += comparisonSections(analysis) }
        if let costs, !costs.isEmpty {
            var s = ReportSection(title: "Cost per row and what a second target reuses")
            s.paragraphs.append("Wall time measured on this machine per scoring seed (ToV and LESS include θ_bas's training, which they share); "
                + "FLOPs per scored row are estimates (2·N·T forward, 6·N·T forward + backward, N the surrogate's parameters, T the pool's mean row tokens), "
                + "this target's whole work spread over the rows, and again for a second target on the same pool counting what the method reuses.")
            s.tables.append((["method", "seed", "rows", "wall", "wall / row", "FLOPs / row", "2nd target FLOPs / row", "stored", "a second target reuses"], costs.map { c in
                [c.method, "\(c.seed)", "\(c.rows)", Fmt.seconds(c.wallSeconds), c.rows > 0 ? String(format: "%.2f ms", 1000 * c.wallSeconds / Double(c.rows)) : "–",
                 c.flopsPerRow.map { String(format: "%.3g", $0) } ?? "–", c.secondTargetFlopsPerRow.map { String(format: "%.3g", $0) } ?? "–",
                 Fmt.bytes(c.bytesStored), c.reuse ?? (c.note.isEmpty ? "–" : c.note)]
            }))
            sections.append(s)
        }
        return sections
    }

    func comparisonSections(_ analysis: ProtocolAnalysis) -> [ReportSection] {
        var sections: [ReportSection] = []
        var headline = ReportSection(title: "Headline")
        headline.paragraphs.append(analysis.rule)
        headline.paragraphs += analysis.headlines.map { "- \($0.sentence)" }
        sections.append(headline)

        for arm in EvaluationReport.unique(analysis.comparisons.map(\.arm)) {
            var s = ReportSection(title: arm == EvaluationArm.withZval.rawValue
                                  ? "Primary: Z_val + selection vs Z_val + random vs Z_val alone"
                                  : "Secondary: selection alone vs random alone")
            s.paragraphs.append("Δ = baseline − policy test loss as a share of the baseline's (positive: the policy is better), mean over seeds "
                + "with its 95 % paired-t interval; \"tuned\" puts each side at its own best LR. The verdict follows the interval.")
            for proxy in EvaluationReport.unique(analysis.comparisons.filter { $0.arm == arm }.map(\.proxy)) {
                let rows = analysis.comparisons.filter { $0.arm == arm && $0.proxy == proxy }.map { c -> [String] in
                    let scale = c.baselineMean
                    let lr = c.learningRate.map(Fmt.lr) ?? "tuned (\(Fmt.lr(c.policyLearningRate)) / \(Fmt.lr(c.baselineLearningRate)))"
                    return [proxy, ProtocolAnalysis.name(c.policy, arm: arm), ProtocolAnalysis.name(c.baseline, arm: arm), lr,
                            Fmt.num(c.policyMean), Fmt.num(c.baselineMean), Fmt.signedPercent(c.interval.estimate / scale),
                            c.interval.lower.isFinite ? "\(Fmt.signedPercent(c.interval.lower / scale)) to \(Fmt.signedPercent(c.interval.upper / scale))" : "–",
                            "\(c.interval.n)", c.verdict.rawValue]
                }
                s.tables.append((["proxy", "policy", "baseline", "LR", "policy loss", "baseline loss", "Δ", "95 % CI", "seeds", "verdict"], rows))
            }
            sections.append(s)
        }

        let proxyNames = EvaluationReport.unique(analysis.headlines.map(\.tuned.proxy))
        if proxyNames.count > 1 {
            var s = ReportSection(title: "Gain by proxy size")
            s.paragraphs.append("The headline comparisons (tuned) on each proxy: how the selection's gain changes with the size of the model it trains.")
            s.tables.append((["comparison"] + proxyNames, EvaluationReport.unique(analysis.headlines.map { "\($0.tuned.policy)|\($0.tuned.baseline)|\($0.tuned.arm)" }).map { key in
                let parts = key.split(separator: "|").map(String.init)
                return ["\(ProtocolAnalysis.name(parts[0], arm: parts[2])) vs \(ProtocolAnalysis.name(parts[1], arm: parts[2]))"] + proxyNames.map { proxy in
                    guard let h = analysis.headlines.first(where: { $0.tuned.proxy == proxy && $0.tuned.policy == parts[0] && $0.tuned.baseline == parts[1] && $0.tuned.arm == parts[2] }) else { return "–" }
                    let i = h.tuned.interval, m = h.tuned.baselineMean
                    return "\(Fmt.signedPercent(i.estimate / m)) [\(Fmt.signedPercent(i.lower / m)), \(Fmt.signedPercent(i.upper / m))] \(h.verdict.rawValue)"
                }
            }))
            sections.append(s)
        }

        return sections
    }
}
