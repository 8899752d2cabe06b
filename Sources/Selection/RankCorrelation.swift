/// Rank correlations of scores: how alike two scorings order the same rows. The daemon's Z_val
/// agreement (``ZvalAgreement`` in ToVPipeline) and the evaluation's reports both use them, so they
/// live beside the selection they judge. Degenerate input (a constant side, NaN, lengths that differ,
/// fewer than two rows) gives NaN.
public enum RankCorrelation {
    /// 1-based ranks of `x`, tied values sharing the average of the ranks they span.
    public static func ranks(_ x: [Double]) -> [Double] {
        let order = x.indices.sorted { x[$0] < x[$1] }
        var r = [Double](repeating: 0, count: x.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count, x[order[j + 1]] == x[order[i]] { j += 1 }
            let average = Double(i + j) / 2 + 1
            for k in i...j { r[order[k]] = average }
            i = j + 1
        }
        return r
    }

    /// Pearson correlation.
    public static func pearson(_ a: [Double], _ b: [Double]) -> Double {
        guard a.count == b.count, a.count >= 2 else { return .nan }
        let ma = a.reduce(0, +) / Double(a.count), mb = b.reduce(0, +) / Double(b.count)
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in a.indices {
            sab += (a[i] - ma) * (b[i] - mb)
            saa += (a[i] - ma) * (a[i] - ma)
            sbb += (b[i] - mb) * (b[i] - mb)
        }
        guard saa > 0, sbb > 0 else { return .nan }
        return sab / (saa * sbb).squareRoot()
    }

    /// Spearman rank correlation: Pearson correlation of average ranks (handles ties exactly).
    public static func spearman(_ a: [Double], _ b: [Double]) -> Double {
        guard a.count == b.count, !a.contains(where: \.isNaN), !b.contains(where: \.isNaN) else { return .nan }
        return pearson(ranks(a), ranks(b))
    }

    /// Spearman correlation of `a` and `b` with `c` partialled out: how alike `a` and `b` order the rows
    /// beyond what each shares with `c` (the first-order partial correlation of the three rank vectors).
    public static func partialSpearman(_ a: [Double], _ b: [Double], given c: [Double]) -> Double {
        let ab = spearman(a, b), ac = spearman(a, c), bc = spearman(b, c)
        let denominator = ((1 - ac * ac) * (1 - bc * bc)).squareRoot()
        guard denominator > 0 else { return .nan }
        return (ab - ac * bc) / denominator
    }
}
