import Foundation
import Selection
import Testing
@testable import Evaluation

/// The random baseline must be an independent draw: with the policies' seed (the old protocol's draw 0) it
/// shared about half its rows with Score+Random's random half.
@Suite struct SeedStreamTests {
    @Test func theRandomBaselineIsIndependentOfScoreRandomsRandomHalf() {
        var g = SplitMix64(seed: 9)
        let rows = (0..<2000).map { ScoredRow(id: Int64($0), score: Double(g.next() % 10_000) / 10_000, uncertainty: 0, length: 1 + Int(g.next() % 50)) }
        func select(_ policy: Policy, _ seed: Int64) -> Set<Int64> {
            Set(Selection.select(rows, settings: SelectionSettings(budget: .rows(200), policy: policy, seed: seed)).ids)
        }
        for s in 0..<3 {
            let scoreRandom = select(.scoreRandom, SeedStream.policy(s))
            let old = select(.random, SeedStream.policy(s)).intersection(scoreRandom).count
            let new = select(.random, SeedStream.randomBaseline(s)).intersection(scoreRandom).count
            // Independent draws of 200 of 2,000 rows share about 200 · 200 / 2,000 = 20 rows.
            #expect(new < 45, "seed \(s): \(new)")
            #expect(old > 70, "seed \(s): \(old) (the old draw 0 shared the random half)")
        }
        let streams = (0..<5).flatMap { [SeedStream.policy($0), SeedStream.randomBaseline($0), SeedStream.dsir($0), SeedStream.lengthMatched($0)] }
        #expect(Set(streams).count == streams.count)
    }
}
