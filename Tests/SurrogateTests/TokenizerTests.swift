import Foundation
import Testing
@testable import Surrogate

@Suite("Byte-level BPE tokenizer")
struct TokenizerTests {
    static let prose = """
        The quick brown fox jumps over the lazy dog. A language model assigns probabilities to sequences of \
        tokens; training on the validation set nudges it toward the target distribution, and the examples \
        whose loss drops the most are the ones that matter. Selection keeps half of the budget by score and \
        half at random, within equal-count length bins, because short responses otherwise win by noise. \
        The daemon reads candidates from PostgreSQL, scores them in batches and keeps the selected set current.
        """

    static let trained = Tokenizer.train(sample: Array(repeating: Array(prose.utf8), count: 3), vocabSize: 600)

    @Test func anyBytesRoundTrip() {
        var g = SplitMix64(seed: 11)
        for _ in 0..<2000 {
            let count = Int(g.next() % 64)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            let ids = Self.trained.encode(bytes)
            #expect(Self.trained.decode(ids) == bytes)
            #expect(!ids.contains { $0 == Tokenizer.endOfText || $0 == Tokenizer.separator || $0 == Tokenizer.pad })
        }
    }

    @Test func trainingIsDeterministicAndCompresses() {
        let again = Tokenizer.train(sample: Array(repeating: Array(Self.prose.utf8), count: 3), vocabSize: 600)
        #expect(again == Self.trained)
        let bytes = Array(Self.prose.utf8)
        let ratio = Double(Self.trained.encode(bytes).count) / Double(bytes.count)
        #expect(ratio < 0.5, "tokens per byte \(ratio)")
        #expect(Self.trained.vocabSize <= 600)
    }

    @Test func serializationRoundTripsAndRejectsGarbage() throws {
        let restored = try Tokenizer(serialized: Self.trained.serialized())
        #expect(restored == Self.trained)
        #expect(restored.encode(Array(Self.prose.utf8)) == Self.trained.encode(Array(Self.prose.utf8)))
        #expect(throws: SurrogateError.self) { try Tokenizer(serialized: []) }
        #expect(throws: SurrogateError.self) { try Tokenizer(serialized: Array(Self.trained.serialized().dropLast(3))) }
        var selfReferencing = Tokenizer(merges: [(1, 2)]).serialized()
        selfReferencing[12] = 0x03; selfReferencing[13] = 0x01   // left = 259: refers to itself
        #expect(throws: SurrogateError.self) { try Tokenizer(serialized: selfReferencing) }
    }

    @Test func encodeThroughput() {
        let text = Array(String(repeating: Self.prose + " ", count: 200).utf8)
        let start = ContinuousClock.now
        _ = Self.trained.encode(text)
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        print("tokenizer encode (debug build): \(Double(text.count) / seconds / 1e6) MB/s")
        #expect(seconds < 30)
    }
}
