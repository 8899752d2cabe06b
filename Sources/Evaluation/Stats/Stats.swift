import Foundation

/// Summary statistics for evaluation reports. Pure functions; empty or degenerate input gives `.nan`,
/// which the renderers print as "n/a".
public enum Stats {
    /// Arithmetic mean.
    public static func mean(_ x: [Double]) -> Double {
        x.isEmpty ? .nan : x.reduce(0, +) / Double(x.count)
    }

    /// Sample standard deviation (n − 1 in the denominator); 0 for a single value, nan for none.
    public static func std(_ x: [Double]) -> Double {
        guard !x.isEmpty else { return .nan }
        guard x.count > 1 else { return 0 }
        let m = mean(x)
        return (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)).squareRoot()
    }

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

    /// Pearson correlation; nan when either side is constant or the lengths differ.
    public static func pearson(_ a: [Double], _ b: [Double]) -> Double {
        guard a.count == b.count, a.count >= 2 else { return .nan }
        let ma = mean(a), mb = mean(b)
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

    /// Median (average of the two middle values for an even count).
    public static func median(_ x: [Double]) -> Double {
        guard !x.isEmpty else { return .nan }
        let s = x.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// The q-quantile (0 ≤ q ≤ 1) with linear interpolation between order statistics; NaN when empty.
    public static func quantile(_ x: [Double], _ q: Double) -> Double {
        guard !x.isEmpty else { return .nan }
        let s = x.sorted()
        let position = min(max(q, 0), 1) * Double(s.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, s.count - 1)
        return s[lower] + (s[upper] - s[lower]) * (position - Double(lower))
    }
}
