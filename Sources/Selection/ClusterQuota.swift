/// Diversity inside the score half (issue 27's candidate, `tovd evaluate`'s `<policy>+diverse`; not a
/// daemon policy, as it did not win: docs/evaluation.md, "Diversity in the score half"). Rows fall into
/// clusters of similar text, and in each length bin one cluster may take at most ``cap(binQuota:)`` of
/// the bin's places by score, so neither near-duplicates (one passage under several questions) nor one
/// template (a subtask's shared instruction) can fill the score half. ToV's own device for the same
/// risk is the random half; this one keeps the score half's places for scores.
///
/// The rule, exact so that SQL could compute it (`row_number() OVER (PARTITION BY bin, cluster ORDER BY
/// score DESC, id)`): a row competes for its bin's quota only if it ranks ≤ cap inside its (bin,
/// cluster) by (score desc, id asc); the quota goes to the competing rows by (score desc, id asc), and
/// places no competing row fills go to the rest of the budget.
public struct ClusterQuota: Sendable, Equatable {
    /// A cluster's most places in a bin, as a share of the bin's quota: 1/10, so that each bin's places
    /// spread over at least ten clusters where the bin has them (chosen before any run, as the bins' k).
    public static let defaultShare = 0.1
    /// Shingles of this many words: near-duplicate detection's usual length (e.g. Lee et al. 2022).
    public static let shingleWords = 5

    public var clusterOf: [Int64: UInt64]
    public var share: Double

    public init(clusterOf: [Int64: UInt64], share: Double = ClusterQuota.defaultShare) {
        self.clusterOf = clusterOf
        self.share = share
    }

    /// The most places one cluster takes in a bin whose quota is `binQuota` (at least one).
    public func cap(binQuota: Int) -> Int {
        max(1, Int((Double(binQuota) * share).rounded(.up)))
    }

    /// `ranked` (a bin's rows by score desc, id asc) without the rows beyond their cluster's cap.
    func competing(_ ranked: [ScoredRow], cap: Int) -> [ScoredRow] {
        var taken: [UInt64: Int] = [:]
        return ranked.filter { row in
            let cluster = clusterOf[row.id] ?? 0
            taken[cluster, default: 0] += 1
            return taken[cluster]! <= cap
        }
    }

    /// The text's cluster: one-permutation MinHash of its lower-cased word 5-gram shingles (the tokens
    /// of ``NgramImportance/tokens(_:)``), i.e. the smallest shingle hash. Two texts share it with
    /// probability equal to the Jaccard similarity of their shingle sets, so near-duplicates share it
    /// almost always, and rows of one template share it as often as the template's shingles dominate
    /// their text. A text of fewer than five tokens is one shingle; an empty one is cluster 0.
    public static func cluster(_ text: String) -> UInt64 {
        let words = NgramImportance.tokens(text)
        guard !words.isEmpty else { return 0 }
        let width = min(shingleWords, words.count)
        var smallest = UInt64.max
        for start in 0...(words.count - width) {
            smallest = min(smallest, hash(words[start..<start + width]))
        }
        return smallest
    }

    /// FNV-1a over the shingle's words (a space between them), then SplitMix64's finalizer, so that the
    /// order of the hashes, which the minimum reads, is close to a random permutation's.
    static func hash(_ shingle: ArraySlice<Substring>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for (index, word) in shingle.enumerated() {
            if index > 0 { h = (h ^ 0x20) &* 0x100_0000_01b3 }
            for b in word.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        }
        return SplitMix64.mix(h)
    }
}
