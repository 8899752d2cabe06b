import Foundation
import Testing
@testable import Selection

@Suite("ToV math")
struct ScoreTests {
    @Test func scoreFunctions() {
        #expect(ScoreFunction.improvement.apply(-0.5) == -0.5)
        #expect(ScoreFunction.abs.apply(-0.5) == 0.5)
        #expect(ScoreFunction.relu.apply(-0.5) == 0)
        #expect(ScoreFunction.relu.apply(0.25) == 0.25)
    }

    @Test func tovScoreAveragesOverEpochs() {
        #expect(tovScore(baseLosses: [2, 3], valLosses: [1.5, 3.5], function: .improvement) == 0)
        #expect(tovScore(baseLosses: [2, 3], valLosses: [1.5, 3.5], function: .abs) == 0.5)
        #expect(tovScore(baseLosses: [2, 3], valLosses: [1.5, 3.5], function: .relu) == 0.25)
    }
}

@Suite("Budget and settings")
struct BudgetTests {
    /// score_random takes ⌊n · score_share⌋ rows by score and the rest at random; ½ is the n/2 of
    /// before the setting existed, 0 is all random, 1 all by score (bins still spread it).
    @Test func scoreShareSplitsTheBudget() {
        let rows = (0..<400).map { ScoredRow(id: Int64($0), score: Double(($0 * 37) % 101), length: 1 + ($0 * 13) % 50) }
        for (share, byScore) in [(0.5, 50), (0.25, 25), (0.75, 75), (0.0, 0), (1.0, 100), (0.29, 29)] {
            let settings = SelectionSettings(budget: .rows(100), bins: 5, scoreShare: share)
            #expect(settings.scoreRows(budget: 100) == byScore)
            let result = select(rows, settings: settings)
            #expect(result.items.count == 100)
            #expect(result.items.filter { $0.reason == .score }.count == byScore, "share \(share)")
        }
        for n in 0..<50 { #expect(SelectionSettings(budget: .rows(n)).scoreRows(budget: n) == n / 2) }
        #expect(SelectionSettings(policy: .scoreOnly, scoreShare: 0.25).scoreRows(budget: 40) == 40)
        #expect(throws: SelectionError.self) { try SelectionSettings(scoreShare: 1.5).validate() }
    }

    @Test func rowCounts() {
        #expect(Budget.rows(10).rowCount(eligible: 5) == 5)
        #expect(Budget.rows(3).rowCount(eligible: 5) == 3)
        #expect(Budget.fraction(0.05).rowCount(eligible: 1000) == 50)
        #expect(Budget.fraction(0.05).rowCount(eligible: 39) == 1)
        #expect(Budget.fraction(1).rowCount(eligible: 7) == 7)
    }

    @Test func parsing() throws {
        #expect(try Budget(json: "{\"fraction\": 0.05}") == .fraction(0.05))
        #expect(try Budget(json: "{\"rows\": 10000}") == .rows(10000))
        for bad in ["{}", "{\"fraction\": 2}", "{\"fraction\": 0}", "{\"rows\": -1}", "{\"rows\": 1.5}", "{\"rows\": \"5\"}",
                    "{\"rows\": 1, \"fraction\": 0.1}", "[1]", "nope", "{\"fraction\": true}"] {
            #expect(throws: SelectionError.self, "\(bad)") { try Budget(json: bad) }
        }
    }

    @Test func validation() {
        #expect(throws: SelectionError.self) { try SelectionSettings(bins: 0).validate() }
        #expect(throws: SelectionError.self) { try SelectionSettings(budget: .fraction(1.5)).validate() }
        #expect(throws: Never.self) { try SelectionSettings().validate() }
    }
}

@Suite("MD5 and the random order")
struct MD5Tests {
    @Test func rfc1321Vectors() {
        #expect(MD5.hex([]) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(MD5.hex(Array("a".utf8)) == "0cc175b9c0f1b6a831c399e269772661")
        #expect(MD5.hex(Array("abc".utf8)) == "900150983cd24fb0d6963f7d28e17f72")
        #expect(MD5.hex(Array("message digest".utf8)) == "f96b697d7cb7938d525a2f31aaf161d0")
        #expect(MD5.hex(Array(String(repeating: "1234567890", count: 8).utf8)) == "57edf4a22be3c955ac49da2e2107b67a")
    }

    @Test func randomKeyMatchesPostgres() {
        // python3 -c "import hashlib; print(hashlib.md5(b'0:1').hexdigest())", the same as SELECT md5('0' || ':' || '1')
        #expect(randomKey(id: 1, seed: 0) == "81c9968003396f59b12b6a5a47add5ac")
        #expect(randomKey(id: -7, seed: 42) == "1d8df7ece71bcd62dbdabd28ea6ced11")
    }
}

@Suite("Selection from scratch")
struct SelectTests {
    func rows(_ n: Int, seed: UInt64 = 1) -> [ScoredRow] {
        var g = SplitMix64(seed: seed)
        return (1...n).map { i in
            ScoredRow(id: Int64(i), score: Double.random(in: -1...1, using: &g), uncertainty: Double.random(in: -3...0, using: &g),
                      length: Int.random(in: 1...200, using: &g))
        }
    }

    @Test func binsFollowNtile() {
        let ten = (1...10).map { ScoredRow(id: Int64($0), score: 0, length: 100 - $0) }
        let bins = lengthBins(ten, bins: 3)
        // Sorted by length: ids 10, 9, ..., 1 → sizes 4, 3, 3.
        #expect([10, 9, 8, 7].map { bins[Int64($0)] } == [0, 0, 0, 0])
        #expect([6, 5, 4].map { bins[Int64($0)] } == [1, 1, 1])
        #expect([3, 2, 1].map { bins[Int64($0)] } == [2, 2, 2])
        let two = [ScoredRow(id: 5, score: 0, length: 3), ScoredRow(id: 4, score: 0, length: 3)]
        #expect(lengthBins(two, bins: 10) == [4: 0, 5: 1])
    }

    @Test func scoreRandomOnAHandCheckedExample() {
        // 4 rows per bin, 2 bins; n = 4 → score half 2 (one per bin), random half 2.
        let r = [
            ScoredRow(id: 1, score: 0.9, length: 1), ScoredRow(id: 2, score: 0.1, length: 1),
            ScoredRow(id: 3, score: 0.5, length: 2), ScoredRow(id: 4, score: 0.7, length: 2),
            ScoredRow(id: 5, score: 0.2, length: 10), ScoredRow(id: 6, score: 0.8, length: 10),
            ScoredRow(id: 7, score: 0.3, length: 11), ScoredRow(id: 8, score: 0.8, length: 11),
        ]
        let result = select(r, settings: SelectionSettings(budget: .rows(4), policy: .scoreRandom, bins: 2, seed: 0))
        let scored = result.items.filter { $0.reason == .score }.map(\.id)
        #expect(scored == [1, 6])   // bin 0 top: id 1 (0.9); bin 1 top: ids 6 and 8 tie at 0.8 → lower id
        #expect(result.items.count == 4)
        let expectedRandom = [2, 3, 4, 5, 7, 8].map { Int64($0) }.sorted {
            randomKey(id: $0, seed: 0) < randomKey(id: $1, seed: 0)
        }.prefix(2).sorted()
        #expect(result.items.filter { $0.reason == .random }.map(\.id) == Array(expectedRandom))
    }

    @Test func otherPolicies() {
        let r = rows(100)
        let unbinned = select(r, settings: SelectionSettings(budget: .rows(10), policy: .scoreOnlyUnbinned))
        #expect(Set(unbinned.ids) == Set(r.sorted { $0.score > $1.score }.prefix(10).map(\.id)))
        let uncertain = select(r, settings: SelectionSettings(budget: .rows(10), policy: .uncertainty))
        #expect(Set(uncertain.ids) == Set(r.sorted { $0.uncertainty > $1.uncertainty }.prefix(10).map(\.id)))
        let random = select(r, settings: SelectionSettings(budget: .rows(10), policy: .random, seed: 3))
        #expect(random.items.allSatisfy { $0.reason == .random } && random.items.count == 10)
        let binned = select(r, settings: SelectionSettings(budget: .rows(20), policy: .scoreOnly, bins: 10))
        #expect(binned.items.count == 20)
        #expect(Dictionary(grouping: binned.items, by: \.lengthBin).values.allSatisfy { $0.count == 2 })
    }

    @Test(arguments: Policy.allCases)
    func invariantsOnRandomPools(policy: Policy) {
        var g = SplitMix64(seed: 99)
        for case_ in 0..<100 {
            let n = Int.random(in: 0...300, using: &g)
            let pool = n == 0 ? [] : rows(n, seed: UInt64(case_))
            let budget: Budget = Bool.random(using: &g) ? .rows(Int.random(in: 0...n + 5, using: &g)) : .fraction(Double.random(in: 0.01...1, using: &g))
            let bins = Int.random(in: 1...12, using: &g)
            let settings = SelectionSettings(budget: budget, policy: policy, bins: bins, seed: Int64(case_))
            let result = select(pool, settings: settings)
            let want = budget.rowCount(eligible: pool.count)
            #expect(Set(result.ids).count == result.items.count)
            if policy != .scoreOnly { #expect(result.items.count == want) } else { #expect(result.items.count <= want) }
            if policy == .scoreRandom || policy == .scoreOnly || policy == .scoreDSIR {
                let s = policy == .scoreOnly ? want : want / 2
                let perBin = Dictionary(grouping: result.items.filter { $0.reason == .score }, by: \.lengthBin)
                for (bin, items) in perBin { #expect(items.count <= binQuota(bin: bin, scoreRows: s, bins: bins)) }
            }
        }
    }

    /// score_dsir takes score_random's score half, then the rows with far larger n-gram weights
    /// first (the Gumbel noise moves a key by a few units, not by 100), each with reason importance;
    /// among equal weights the noise alone orders them, reproducibly.
    @Test func scoreDSIRDrawsTheRestByImportance() {
        var pool = rows(300)
        for i in pool.indices where i % 10 == 0 { pool[i].importance = 100 }
        let settings = SelectionSettings(budget: .rows(60), policy: .scoreDSIR, seed: 4)
        let result = select(pool, settings: settings)
        let plain = select(pool, settings: SelectionSettings(budget: .rows(60), policy: .scoreRandom, seed: 4))
        #expect(Set(result.items.filter { $0.reason == .score }.map(\.id)) == Set(plain.items.filter { $0.reason == .score }.map(\.id)))
        let heavy = Set(pool.filter { $0.importance == 100 }.map(\.id))
        let drawn = result.items.filter { $0.reason == .importance }
        #expect(drawn.count == 30)
        #expect(heavy.subtracting(result.items.filter { $0.reason == .score }.map(\.id)).isSubset(of: Set(drawn.map(\.id))))
        #expect(select(pool, settings: settings) == result)
        let otherSeed = select(pool, settings: SelectionSettings(budget: .rows(60), policy: .scoreDSIR, seed: 5))
        #expect(otherSeed.ids != result.ids, "the light rows' order follows the seed's noise")
    }

    /// The stored form of an n-gram model weighs rows exactly as the fitted one; other bytes are refused.
    @Test func ngramModelsRoundTripThroughTheirBytes() throws {
        let model = NgramImportance(target: ["the passage says 4", "the answer is 7"], pool: ["plants need water", "the sky is blue"], buckets: 64)
        let stored = try #require(NgramImportance(bytes: model.bytes))
        #expect(stored == model && stored.logWeight("the answer is blue") == model.logWeight("the answer is blue"))
        #expect(model.bytes.count == 64 * 8)
        #expect(NgramImportance(bytes: []) == nil && NgramImportance(bytes: [1, 2, 3]) == nil)
    }

    @Test func addingARowThatLosesEverywhereChangesNothing() {
        let pool = rows(500)
        let settings = SelectionSettings(budget: .rows(50), policy: .random, seed: 5)
        let before = select(pool, settings: settings)
        let maxKey = before.ids.map { randomKey(id: $0, seed: 5) }.max()!
        var id: Int64 = 10_000
        while randomKey(id: id, seed: 5) < maxKey { id += 1 }
        let after = select(pool + [ScoredRow(id: id, score: -100, length: 50)], settings: settings)
        #expect(after.ids == before.ids)
        #expect(SelectionDiff(old: before, new: after) == SelectionDiff(old: before, new: before))
    }

    @Test func largePoolTiming() {
        let pool = rows(200_000)
        let start = ContinuousClock.now
        let result = select(pool, settings: SelectionSettings(budget: .fraction(0.05)))
        let elapsed = ContinuousClock.now - start
        print("select over \(pool.count) rows (debug build): \(elapsed)")
        #expect(result.items.count == 10_000)
    }
}
