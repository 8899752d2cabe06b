import Foundation
import Selection

/// A control for "the selection only picks rows as long as the target's": random pool rows whose response
/// lengths follow Z_val's. Z_val's response lengths (in tokens) are cut into quantile bins; each bin gets
/// the share of the budget Z_val has in it, filled uniformly at random from the pool rows whose length falls
/// in it. A bin the pool cannot fill passes its remainder to the nearest bins that can.
public enum LengthMatchedRandom {
    /// - Parameters:
    ///   - poolLengths: response length of each candidate row (index = candidate index).
    ///   - targetLengths: Z_val's response lengths.
    ///   - n: rows to draw (at most `poolLengths.count`).
    ///   - bins: quantile bins of Z_val's lengths.
    /// - Returns: candidate indices, `min(n, poolLengths.count)` of them, distinct.
    public static func select(poolLengths: [Int], targetLengths: [Int], n: Int, bins: Int = 10, seed: UInt64) -> [Int] {
        let n = min(n, poolLengths.count)
        guard n > 0, !targetLengths.isEmpty else { return [] }
        let sorted = targetLengths.sorted()
        // Upper edges of the quantile bins (duplicates collapse: a length Z_val has often is one bin).
        var edges: [Int] = []
        for b in 1...bins {
            let edge = sorted[min(sorted.count - 1, (b * sorted.count - 1) / bins)]
            if edges.last != edge { edges.append(edge) }
        }
        // Bin k holds lengths in (edges[k − 1], edges[k]]; longer than all of Z_val is one more bin, never
        // given a quota (only a shortfall can reach it).
        func bin(_ length: Int) -> Int { edges.firstIndex { length <= $0 } ?? edges.count }
        var targetCounts = [Int](repeating: 0, count: edges.count)
        for l in targetLengths { targetCounts[bin(l)] += 1 }
        // Largest-remainder apportionment of n over the bins.
        let exact = targetCounts.map { Double($0) * Double(n) / Double(targetLengths.count) }
        var quota = exact.map { Int($0) }
        let order = exact.indices.sorted { exact[$0] - Double(quota[$0]) > exact[$1] - Double(quota[$1]) }
        for k in order.prefix(n - quota.reduce(0, +)) { quota[k] += 1 }

        var random = SplitMix64(seed: seed)
        quota.append(0)
        var members = [[Int]](repeating: [], count: edges.count + 1)
        for (i, l) in poolLengths.enumerated() { members[bin(l)].append(i) }
        for k in members.indices { members[k].shuffle(using: &random) }
        var chosen: [Int] = []
        var deficit = 0
        for k in quota.indices {
            let take = min(quota[k], members[k].count)
            chosen += members[k].prefix(take)
            members[k].removeFirst(take)
            deficit += quota[k] - take
        }
        // Nearest bins first, so the shortfall keeps lengths close to where Z_val has them.
        if deficit > 0 {
            let underfilled = quota.indices.filter { quota[$0] > 0 }
            let byDistance = members.indices.sorted { a, b in
                let da = underfilled.map { abs($0 - a) }.min() ?? 0, db = underfilled.map { abs($0 - b) }.min() ?? 0
                return da == db ? a < b : da < db
            }
            for k in byDistance where deficit > 0 {
                let take = min(deficit, members[k].count)
                chosen += members[k].prefix(take)
                members[k].removeFirst(take)
                deficit -= take
            }
        }
        return chosen
    }
}
