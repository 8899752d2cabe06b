import Foundation
import Testing
@testable import Selection

@Suite("Cluster quota in the score half")
struct ClusterQuotaTests {
    func pool(_ n: Int, clusters: UInt64, seed: UInt64) -> (rows: [ScoredRow], quota: ClusterQuota) {
        var g = SplitMix64(seed: seed)
        let rows = (1...n).map { ScoredRow(id: Int64($0), score: Double.random(in: -1...1, using: &g), length: Int.random(in: 1...200, using: &g)) }
        let clusterOf = Dictionary(uniqueKeysWithValues: rows.map { ($0.id, UInt64.random(in: 0..<clusters, using: &g)) })
        return (rows, ClusterQuota(clusterOf: clusterOf))
    }

    /// The rule as the type documents it, written from its definition: rank inside (bin, cluster) by
    /// (score desc, id asc) ≤ cap, then the bin's top quota of those rows.
    func expectedScoreRows(_ rows: [ScoredRow], quota: ClusterQuota, scoreRows s: Int, bins k: Int) -> Set<Int64> {
        let bins = lengthBins(rows, bins: k)
        var out = Set<Int64>()
        for bin in 0..<k {
            let members = rows.filter { bins[$0.id] == bin }
            let binQuota = binQuota(bin: bin, scoreRows: s, bins: k)
            let cap = quota.cap(binQuota: binQuota)
            let competing = members.filter { row in
                let rank = members.filter { other in
                    quota.clusterOf[other.id] == quota.clusterOf[row.id] && (other.score > row.score || (other.score == row.score && other.id <= row.id))
                }.count
                return rank <= cap
            }
            out.formUnion(competing.sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }.prefix(binQuota).map(\.id))
        }
        return out
    }

    @Test(arguments: [Policy.scoreRandom, .scoreDSIR, .scoreOnly])
    func theScoreHalfFollowsTheRule(policy: Policy) {
        var g = SplitMix64(seed: 7)
        for case_ in 0..<40 {
            let (rows, quota) = pool(Int.random(in: 1...250, using: &g), clusters: UInt64.random(in: 1...8, using: &g), seed: UInt64(case_))
            let k = Int.random(in: 1...6, using: &g)
            let settings = SelectionSettings(budget: .rows(Int.random(in: 0...rows.count, using: &g)), policy: policy, bins: k, seed: Int64(case_))
            let n = settings.budget.rowCount(eligible: rows.count)
            let result = select(rows, settings: settings, clusterQuota: quota)
            let scored = Set(result.items.filter { $0.reason == .score }.map(\.id))
            #expect(scored == expectedScoreRows(rows, quota: quota, scoreRows: settings.scoreRows(budget: n), bins: k))
            // Places the quota leaves open go to the rest of the budget; score_only has none.
            if policy == .scoreOnly { #expect(result.items.count == scored.count) } else { #expect(result.items.count == n) }
        }
    }

    /// One cluster holding every top score of the bin gets its cap; the next clusters' best fill the rest.
    @Test func oneClusterCannotFillABin() {
        let rows = (1...40).map { ScoredRow(id: Int64($0), score: Double(100 - $0), length: 5) }
        let quota = ClusterQuota(clusterOf: Dictionary(uniqueKeysWithValues: rows.map { ($0.id, $0.id <= 30 ? 1 : UInt64($0.id)) }))
        let result = select(rows, settings: SelectionSettings(budget: .rows(20), policy: .scoreOnly, bins: 1), clusterQuota: quota)
        #expect(quota.cap(binQuota: 20) == 2)
        #expect(result.ids == [1, 2] + (31...40).map(Int64.init), "the cap of 2, then all 10 singletons; 8 places stay open")
        let plain = select(rows, settings: SelectionSettings(budget: .rows(20), policy: .scoreOnly, bins: 1))
        #expect(plain.ids == (1...20).map(Int64.init))
    }

    @Test func clustersOfText() {
        let text = "Definition: answer the question about the passage. Passage: the river rose four feet in May."
        #expect(ClusterQuota.cluster(text) == ClusterQuota.cluster(text.uppercased()), "lower-cased")
        #expect(ClusterQuota.cluster("") == 0 && ClusterQuota.cluster("  \n ") == 0)
        #expect(ClusterQuota.cluster("two words") == ClusterQuota.cluster("Two  words"))
        #expect(ClusterQuota.cluster("two words") != ClusterQuota.cluster("two birds"), "a short text is one shingle")
    }

    /// One-permutation MinHash: two texts share a cluster with probability equal to the Jaccard
    /// similarity of their 5-gram shingle sets. Texts of 100 words overlapping by 50 share 46 of
    /// 96 shingles each: J = 46/146 ≈ 0.315. Over 600 pairs of fresh random words the share of
    /// collisions must be near it (± 0.06 is over 3 standard deviations), and disjoint texts never collide.
    @Test func textsShareAClusterAsOftenAsTheirShinglesOverlap() {
        var g = SplitMix64(seed: 11)
        func word() -> String { String((0..<6).map { _ in Character(UnicodeScalar(UInt8.random(in: 97...122, using: &g))) }) }
        var same = 0, disjointSame = 0
        let pairs = 600
        for _ in 0..<pairs {
            let words = (0..<150).map { _ in word() }
            let a = words[0..<100].joined(separator: " "), b = words[50..<150].joined(separator: " ")
            if ClusterQuota.cluster(a) == ClusterQuota.cluster(b) { same += 1 }
            let c = (0..<100).map { _ in word() }.joined(separator: " ")
            if ClusterQuota.cluster(a) == ClusterQuota.cluster(c) { disjointSame += 1 }
        }
        let share = Double(same) / Double(pairs)
        #expect(abs(share - 46.0 / 146.0) < 0.06, "collision share \(share)")
        #expect(disjointSame == 0)
    }
}
