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
