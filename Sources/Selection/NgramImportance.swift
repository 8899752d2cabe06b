import Foundation

/// Hashed n-gram importance weights, DSIR's (Xie et al. 2023, arXiv 2302.03169) as p-lambda/dsir's
/// `HashedNgramDSIR` computes them: how much more a row's words look like the target's than like the
/// pool's. The `score_dsir` policy takes the part of its budget that is not taken by score by these
/// weights instead of uniformly; `tovd evaluate`'s `dsir` baseline resamples by them alone.
///
/// - Features: the text lower-cased, split like NLTK's `WordPunctTokenizer` (`\w+|[^\w\s]+`); every
///   unigram and bigram (joined by a space) hashed into ``buckets`` counts.
/// - Two bag-of-ngrams models: the normalised feature counts of the target's rows (Z_val) and of the
///   pool's (the daemon and the pipeline take U, the uniform sample of the pool every base model
///   draws: its estimate changes only with a new base model, as U does).
/// - A row's log importance weight is Σ_k count_k · (log(p_target,k + 1e-8) − log(p_pool,k + 1e-8)).
///
/// One difference from p-lambda/dsir: n-grams are hashed with 64-bit FNV-1a, not SHA-256 (a different
/// but equally arbitrary bucket assignment; collisions are as rare).
public struct NgramImportance: Sendable, Equatable {
    public static let defaultBuckets = 10_000
    /// log p_target − log p_pool per bucket.
    public let logRatio: [Double]
    public var buckets: Int { logRatio.count }

    /// Fits both bag-of-ngrams models.
    public init(target: [String], pool: [String], buckets: Int = NgramImportance.defaultBuckets) {
        let t = Self.probabilities(target, buckets: buckets), p = Self.probabilities(pool, buckets: buckets)
        logRatio = zip(t, p).map { log($0 + 1e-8) - log($1 + 1e-8) }
    }

    /// The model as stored (tov.model_versions.importance_model): the log ratios as float8,
    /// little-endian, so a stored model weighs rows exactly as the one fitted.
    public var bytes: [UInt8] {
        logRatio.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
    }

    /// A stored model; nil unless `bytes` is a whole, non-empty number of float8 values.
    public init?(bytes: [UInt8]) {
        guard !bytes.isEmpty, bytes.count % 8 == 0 else { return nil }
        logRatio = stride(from: 0, to: bytes.count, by: 8).map { start in
            Double(bitPattern: bytes[start..<start + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        }
    }

    /// The text a row is weighed by: prompt, newline, response (invalid UTF-8 replaced).
    public static func text(prompt: [UInt8], response: [UInt8]) -> String {
        String(decoding: prompt + [0x0A] + response, as: UTF8.self)
    }

    /// The log importance weight of one row's text.
    public func logWeight(_ text: String) -> Double {
        Self.features(text, buckets: buckets).reduce(0) { $0 + logRatio[$1] }
    }

    /// The order of importance resampling without replacement (the Gumbel-top-k trick): rows sorted by
    /// this key, descending, are a draw with probability ∝ exp(log weight). The Gumbel(0, 1) noise is
    /// a function of the row's random key md5(seed:id) (its first 52 bits as a uniform in (0, 1)), so
    /// the draw is as reproducible as the random half's order.
    public static func resamplingKey(logWeight: Double, id: Int64, seed: Int64) -> Double {
        let digest = MD5.digest(Array("\(seed):\(id)".utf8))
        let bits = digest.prefix(7).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } >> 4
        let u = (Double(bits) + 0.5) / Double(UInt64(1) << 52)
        return logWeight - log(-log(u))
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

    public static func bucket(_ s: String, _ buckets: Int) -> Int {
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
}
