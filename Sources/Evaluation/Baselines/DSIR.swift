import Foundation
import Selection

/// Data Selection with Importance Resampling (Xie et al. 2023, arXiv 2302.03169), as p-lambda/dsir's
/// `HashedNgramDSIR` does it: a model-free baseline users actually run. The weights are
/// ``Selection/NgramImportance``'s (the `score_dsir` policy's), fitted here on Z_val against the whole
/// pool; the n rows drawn are those with the largest log weight + Gumbel(0, 1) noise.
public struct DSIR: Sendable {
    public let importance: NgramImportance

    /// Fits both bag-of-ngrams models.
    public init(target: [String], pool: [String], buckets: Int = NgramImportance.defaultBuckets) {
        importance = NgramImportance(target: target, pool: pool, buckets: buckets)
    }

    /// The log importance weight of one row.
    public func logWeight(_ text: String) -> Double { importance.logWeight(text) }

    /// Indices of `n` rows drawn without replacement with probability ∝ exp(log weight) (Gumbel-top-k).
    public static func resample(logWeights: [Double], n: Int, seed: UInt64) -> [Int] {
        var random = SplitMix64(seed: seed)
        let keyed = logWeights.enumerated().map { i, w -> (Int, Double) in
            // Gumbel(0, 1) = −log(−log U), U uniform in (0, 1).
            let u = (Double(random.next() >> 11) + 0.5) / Double(1 << 53)
            return (i, w - log(-log(u)))
        }
        return keyed.sorted { $0.1 > $1.1 }.prefix(n).map(\.0)
    }
}
