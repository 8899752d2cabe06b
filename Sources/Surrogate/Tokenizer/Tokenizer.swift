import Foundation
import Synchronization

/// Byte-level BPE: any byte sequence encodes (invalid UTF-8 and control bytes included) and
/// `decode(encode(x)) == x`. Ids 0...255 are bytes, 256...258 the special tokens, merges follow.
///
/// Text is first split into chunks that merges never cross: runs of letters (bytes ≥ 0x80 count as
/// letters, so multi-byte characters stay together), of digits, of whitespace, or of other
/// punctuation, with a single leading space attached to the run after it (as GPT-2 does).
public struct Tokenizer: Sendable, Equatable {
    public static let endOfText: Int32 = 256
    public static let separator: Int32 = 257
    public static let pad: Int32 = 258
    static let firstMerge: Int32 = 259

    /// merges[i] makes token 259 + i from the pair (left, right).
    public let merges: [(Int32, Int32)]
    /// Pair → rank (the merge's index): lower ranks are applied first.
    let ranks: [UInt64: Int32]
    private let cache = ChunkCache()

    public var vocabSize: Int { Int(Self.firstMerge) + merges.count }

    init(merges: [(Int32, Int32)]) {
        self.merges = merges
        var ranks: [UInt64: Int32] = [:]
        for (i, pair) in merges.enumerated() { ranks[Self.key(pair.0, pair.1)] = Int32(i) }
        self.ranks = ranks
    }

    public static func == (a: Tokenizer, b: Tokenizer) -> Bool {
        a.merges.count == b.merges.count && zip(a.merges, b.merges).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    // MARK: - Chunking

    enum ByteClass { case letter, digit, space, other }

    static func byteClass(_ b: UInt8) -> ByteClass {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), 0x80...0xFF: .letter
        case UInt8(ascii: "0")...UInt8(ascii: "9"): .digit
        case 0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C: .space
        default: .other
        }
    }

    // MARK: - Training

    /// Learns `vocabSize − 259` merges from `sample`. Deterministic: ties go to the smallest pair ids.
    public static func train(sample: [[UInt8]], vocabSize: Int, progress: ((Int, Int) -> Void)? = nil) -> Tokenizer {
        var frequencies: [[UInt8]: Int] = [:]
        for text in sample {
            text.withUnsafeBufferPointer { buffer in
                // Whole chunks, never cut: the merges are learned on what the pre-tokenizer makes of the text.
                forEachPiece(buffer, maxBytes: .max) { range in frequencies[Array(buffer[range]), default: 0] += 1; return true }
            }
        }
        // Sorted for determinism: dictionary order varies between runs.
        let chunks = frequencies.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        var words: [[Int32]] = chunks.map { $0.key.map(Int32.init) }
        let counts: [Int] = chunks.map(\.value)
        var pairCounts: [UInt64: Int] = [:]
        var pairWords: [UInt64: Set<Int>] = [:]
        for (w, word) in words.enumerated() where word.count > 1 {
            for j in 0..<(word.count - 1) {
                let k = key(word[j], word[j + 1])
                pairCounts[k, default: 0] += counts[w]
                pairWords[k, default: []].insert(w)
            }
        }
        let wanted = max(0, vocabSize - Int(firstMerge))
        var merges: [(Int32, Int32)] = []
        merges.reserveCapacity(wanted)
        while merges.count < wanted {
            var best: UInt64 = 0, bestCount = 0
            for (k, c) in pairCounts where c > bestCount || (c == bestCount && c > 0 && k < best) {
                best = k
                bestCount = c
            }
            guard bestCount > 0 else { break }
            let a = Int32(truncatingIfNeeded: best >> 32), b = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
            let token = firstMerge + Int32(merges.count)
            merges.append((a, b))
            for w in (pairWords[best] ?? []).sorted() {
                let old = words[w]
                // remove the word's old pair counts, merge, add the new ones
                for j in 0..<(old.count - 1) {
                    let k = key(old[j], old[j + 1])
                    pairCounts[k, default: 0] -= counts[w]
                }
                let merged = Self.replacing(a, b, with: token, in: old)
                words[w] = merged
                if merged.count > 1 {
                    for j in 0..<(merged.count - 1) {
                        let k = key(merged[j], merged[j + 1])
                        pairCounts[k, default: 0] += counts[w]
                        pairWords[k, default: []].insert(w)
                    }
                }
            }
            pairCounts[best] = nil
            pairWords[best] = nil
            progress?(Int(firstMerge) + merges.count, vocabSize)
        }
        return Tokenizer(merges: merges)
    }

    // MARK: - Encoding

    /// Encoding cuts chunks longer than this into pieces of this many bytes (from the chunk's start):
    /// BPE costs O(n²) in a chunk's length, and a 1 MB run of one letter or of CJK (all bytes ≥ 0x80
    /// are letters) is one chunk. Natural text has no chunk this long, so its encoding is unchanged.
    static let maxPieceBytes = 512

    /// Calls `body` with each piece's byte range until it returns false: the pre-tokenizer's chunks
    /// (a run of one byte class, a single space joining the run after it), cut every `maxBytes`.
    static func forEachPiece(_ bytes: UnsafeBufferPointer<UInt8>, maxBytes: Int = maxPieceBytes, _ body: (Range<Int>) -> Bool) {
        var i = 0
        let n = bytes.count
        while i < n {
            var start = i
            var cls = byteClass(bytes[i])
            if bytes[i] == 0x20, i + 1 < n, byteClass(bytes[i + 1]) != .space {
                i += 1
                cls = byteClass(bytes[i])
            }
            i += 1
            while i < n && byteClass(bytes[i]) == cls && !(cls == .space && bytes[i] == 0x20 && i + 1 < n && byteClass(bytes[i + 1]) != .space) {
                if i - start == maxBytes {
                    guard body(start..<i) else { return }
                    start = i
                }
                i += 1
            }
            guard body(start..<i) else { return }
        }
    }

    private func appendPiece(_ piece: Slice<UnsafeBufferPointer<UInt8>>, to out: inout [Int32]) {
        let chunk = Array(piece)
        if let hit = cache.get(chunk) {
            out.append(contentsOf: hit)
        } else {
            let ids = encodeChunk(chunk)
            cache.put(chunk, ids)
            out.append(contentsOf: ids)
        }
    }

    public func encode(_ bytes: [UInt8]) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(bytes.count / 3 + 1)
        bytes.withUnsafeBufferPointer { buffer in
            Self.forEachPiece(buffer) { range in
                appendPiece(buffer[range], to: &out)
                return true
            }
        }
        return out
    }

    public func encode(_ text: String) -> [Int32] { encode(Array(text.utf8)) }

    /// The first `count` tokens of `encode(bytes)` (fewer if it has fewer), encoding only the pieces
    /// that hold them.
    public func encodePrefix(_ bytes: [UInt8], count: Int) -> [Int32] {
        var out: [Int32] = []
        guard count > 0 else { return out }
        bytes.withUnsafeBufferPointer { buffer in
            Self.forEachPiece(buffer) { range in
                appendPiece(buffer[range], to: &out)
                return out.count < count
            }
        }
        return Array(out.prefix(count))
    }

    /// The last `count` tokens of `encode(bytes)`. Pieces encode independently and no token is longer
    /// than `maxTokenBytes`, so those tokens lie in the pieces that reach into the last
    /// count × maxTokenBytes bytes: only those are encoded (the rest is only scanned for boundaries).
    public func encodeSuffix(_ bytes: [UInt8], count: Int) -> [Int32] {
        var out: [Int32] = []
        guard count > 0 else { return out }
        let cut = bytes.count - min(bytes.count, count * maxTokenBytes)
        bytes.withUnsafeBufferPointer { buffer in
            Self.forEachPiece(buffer) { range in
                if range.upperBound > cut { appendPiece(buffer[range], to: &out) }
                return true
            }
        }
        return Array(out.suffix(count))
    }

    /// Bytes of the longest token `encode` can produce (a merge's expansion, at most one piece).
    var maxTokenBytes: Int { cache.maxTokenBytes(merges) }

    /// Bytes handed to the piece encoder (cache lookups and BPE) by this tokenizer and its copies: a
    /// measure of encoding work for tests.
    var encodedBytes: Int { cache.encodedBytes }

    /// Applies merges by rank, lowest first, until none applies.
    func encodeChunk(_ chunk: [UInt8]) -> [Int32] {
        var symbols = chunk.map(Int32.init)
        while symbols.count > 1 {
            var bestRank = Int32.max, bestAt = -1
            for j in 0..<(symbols.count - 1) {
                if let r = ranks[Self.key(symbols[j], symbols[j + 1])], r < bestRank {
                    bestRank = r
                    bestAt = j
                }
            }
            guard bestAt >= 0 else { break }
            let (a, b) = merges[Int(bestRank)]
            symbols = Self.replacing(a, b, with: Self.firstMerge + bestRank, in: symbols)
        }
        return symbols
    }

    /// `symbols` with every non-overlapping (a, b), left to right, replaced by `token`.
    static func replacing(_ a: Int32, _ b: Int32, with token: Int32, in symbols: [Int32]) -> [Int32] {
        var merged: [Int32] = []
        merged.reserveCapacity(symbols.count)
        var j = 0
        while j < symbols.count {
            if j + 1 < symbols.count && symbols[j] == a && symbols[j + 1] == b {
                merged.append(token)
                j += 2
            } else {
                merged.append(symbols[j])
                j += 1
            }
        }
        return merged
    }

    public func decode(_ ids: [Int32]) -> [UInt8] {
        var out: [UInt8] = []
        func emit(_ id: Int32) {
            if id < 256 { out.append(UInt8(id)) } else if id >= Self.firstMerge, Int(id - Self.firstMerge) < merges.count {
                let (a, b) = merges[Int(id - Self.firstMerge)]
                emit(a)
                emit(b)
            }
            // special tokens decode to nothing
        }
        for id in ids { emit(id) }
        return out
    }

    // MARK: - Serialization

    static let magic = Array("TOVBPE01".utf8)

    /// `TOVBPE01`, merge count (UInt32 LE), then each merge as two Int32 LE.
    public func serialized() -> [UInt8] {
        var out = Self.magic
        ByteWriter.append(UInt32(merges.count), to: &out)
        for (a, b) in merges {
            ByteWriter.append(UInt32(bitPattern: a), to: &out)
            ByteWriter.append(UInt32(bitPattern: b), to: &out)
        }
        return out
    }

    public init(serialized bytes: [UInt8]) throws {
        var reader = ByteReader(bytes)
        guard let magic = reader.bytes(8), magic == Self.magic else {
            throw SurrogateError(.tokenizer, "not a tovd tokenizer (bad magic); re-create the checkpoint")
        }
        guard let count = reader.uint32(), count <= 65_536 else {
            throw SurrogateError(.tokenizer, "tokenizer merge count is missing or over 65536")
        }
        guard reader.remaining == Int(count) * 8 else {
            throw SurrogateError(.tokenizer, "tokenizer is \(bytes.count) bytes but \(count) merges need \(16 + Int(count) * 8)")
        }
        var merges: [(Int32, Int32)] = []
        merges.reserveCapacity(Int(count))
        for i in 0..<Int(count) {
            let a = Int32(bitPattern: reader.uint32()!), b = Int32(bitPattern: reader.uint32()!)
            let limit = Self.firstMerge + Int32(i)
            // a merge may only combine bytes and earlier merges, never specials or later tokens
            guard (0..<256).contains(a) || (Self.firstMerge..<limit).contains(a),
                  (0..<256).contains(b) || (Self.firstMerge..<limit).contains(b) else {
                throw SurrogateError(.tokenizer, "tokenizer merge \(i) refers to an invalid token; the file is corrupt")
            }
            merges.append((a, b))
        }
        self.init(merges: merges)
    }
}

extension Tokenizer {
    /// Tokenizes one (prompt, response) pair for a model of `context` tokens, encoding only what
    /// `Example.layout` can keep: the response's first `context` tokens, then as many of the prompt's
    /// last tokens as fit before it. The layout equals that of the full encoding; a 1 MB row costs
    /// about as much as one that fills the context (TokenizerTests).
    public func example(prompt: [UInt8], response: [UInt8], context: Int) -> Example {
        let kept = encodePrefix(response, count: context)
        let promptRoom = context - 1 - min(kept.count, context - 1)
        return Example(prompt: encodeSuffix(prompt, count: promptRoom), response: kept)
    }
}

/// A bounded chunk → ids cache shared by copies of a tokenizer (encode is called from one thread per
/// model, but copies may live on several).
final class ChunkCache: Sendable {
    private struct State {
        var entries: [[UInt8]: [Int32]] = [:]
        var encodedBytes = 0
        var longestToken: Int?
    }
    private let state = Mutex(State())
    var encodedBytes: Int { state.withLock { $0.encodedBytes } }
    func get(_ chunk: [UInt8]) -> [Int32]? {
        state.withLock { state in
            state.encodedBytes += chunk.count
            return state.entries[chunk]
        }
    }
    /// Computed once per tokenizer (the cache lives as long as the merges it serves).
    func maxTokenBytes(_ merges: [(Int32, Int32)]) -> Int {
        state.withLock { state in
            if let longest = state.longestToken { return longest }
            var bytes = [Int](repeating: 1, count: 259 + merges.count)
            for (i, (a, b)) in merges.enumerated() { bytes[259 + i] = bytes[Int(a)] + bytes[Int(b)] }
            let longest = min(bytes.max() ?? 1, Tokenizer.maxPieceBytes)
            state.longestToken = longest
            return longest
        }
    }
    func put(_ chunk: [UInt8], _ ids: [Int32]) {
        state.withLock { state in
            if state.entries.count > 200_000 { state.entries.removeAll(keepingCapacity: true) }
            state.entries[chunk] = ids
        }
    }
}
