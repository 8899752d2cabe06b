import Foundation
import Selection

/// Data Selection with Importance Resampling (Xie et al. 2023, arXiv 2302.03169), as p-lambda/dsir's
/// `HashedNgramDSIR` does it: a model-free baseline users actually run.
///
/// - Features: the text lower-cased, split like NLTK's `WordPunctTokenizer` (`\w+|[^\w\s]+`); every
///   unigram and bigram (joined by a space) hashed into `buckets` (10,000) counts.
/// - Two bag-of-ngrams models: the normalised feature counts of the target rows (Z_val) and of the pool.
/// - A row's log importance weight is Σ_k count_k · (log(p_target,k + 1e-8) − log(p_pool,k + 1e-8)).
/// - Resampling without replacement by the Gumbel-top-k trick: the n rows with the largest
///   log weight + Gumbel(0, 1) noise.
///
/// One difference from p-lambda/dsir: ngrams are hashed with 64-bit FNV-1a, not SHA-256 (a different but
/// equally arbitrary bucket assignment; collisions are as rare).
public struct DSIR: Sendable {
    public var buckets: Int
    /// log p_target − log p_pool per bucket.
    public let logRatio: [Double]

    /// Fits both bag-of-ngrams models.
    public init(target: [String], pool: [String], buckets: Int = 10_000) {
        self.buckets = buckets
        let t = Self.probabilities(target, buckets: buckets), p = Self.probabilities(pool, buckets: buckets)
        logRatio = zip(t, p).map { log($0 + 1e-8) - log($1 + 1e-8) }
    }

    /// Lower-cased word/punctuation tokens (NLTK `WordPunctTokenizer`: runs of word characters, or runs of
    /// characters that are neither word characters nor space).
    public static func tokens(_ text: String) -> [Substring] {
        let lower = text.lowercased()
        var out: [Substring] = []
        var start = lower.startIndex
        var kind = 0  // 0 space, 1 word, 2 punctuation
        func kindOf(_ c: Character) -> Int { c.isWhitespace ? 0 : (c.isLetter || c.isNumber || c == "_") ? 1 : 2 }
        var i = lower.startIndex
        while i < lower.endIndex {
            let k = kindOf(lower[i])
            if k != kind {
                if kind != 0 { out.append(lower[start..<i]) }
                start = i
                kind = k
            }
            i = lower.index(after: i)
        }
        if kind != 0 { out.append(lower[start..<lower.endIndex]) }
        return out
    }

    /// Bucket indices of every unigram and bigram of `text` (one entry per occurrence).
    public static func features(_ text: String, buckets: Int) -> [Int] {
        let words = tokens(text)
        var out = words.map { bucket(String($0), buckets) }
        if words.count > 1 {
            for i in 1..<words.count { out.append(bucket(words[i - 1] + " " + words[i], buckets)) }
        }
        return out
    }

    static func bucket(_ s: String, _ buckets: Int) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Int(h % UInt64(buckets))
    }

    static func probabilities(_ texts: [String], buckets: Int) -> [Double] {
        var counts = [Double](repeating: 0, count: buckets)
        for text in texts { for k in features(text, buckets: buckets) { counts[k] += 1 } }
        let total = counts.reduce(0, +)
        return total > 0 ? counts.map { $0 / total } : counts
    }

    /// The log importance weight of one row.
    public func logWeight(_ text: String) -> Double {
        Self.features(text, buckets: buckets).reduce(0) { $0 + logRatio[$1] }
    }

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
