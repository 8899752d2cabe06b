/// Counts of values in equal-width bins over `[lower, upper]`, as stored in a report.
public struct Histogram: Codable, Sendable, Equatable {
    /// Bin edges, `counts.count + 1` of them, increasing.
    public var edges: [Double]
    public var counts: [Int]

    public init(edges: [Double], counts: [Int]) {
        self.edges = edges
        self.counts = counts
    }

    /// Bins finite `values` into `bins` equal-width bins between `lower` and `upper` (default: their range);
    /// values outside land in the first/last bin.
    public init(values: [Double], bins: Int, lower: Double? = nil, upper: Double? = nil) {
        let finite = values.filter(\.isFinite)
        let n = max(bins, 1)
        var lo = lower ?? finite.min() ?? 0
        var hi = upper ?? finite.max() ?? 1
        if !(hi > lo) { lo -= 0.5; hi = lo + 1 }
        let width = (hi - lo) / Double(n)
        edges = (0...n).map { lo + Double($0) * width }
        counts = [Int](repeating: 0, count: n)
        for v in finite {
            let i = Int(((v - lo) / width).rounded(.down))
            counts[min(max(i, 0), n - 1)] += 1
        }
    }

    /// Total count.
    public var total: Int { counts.reduce(0, +) }
}
