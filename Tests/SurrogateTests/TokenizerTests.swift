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

@Suite("Encoding only what fits the context")
struct TokenizerTruncationTests {
    static let tokenizer = TokenizerTests.trained

    static func realRows() throws -> [(prompt: [UInt8], response: [UInt8])] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("Tests/IntegrationTests/Fixtures/real_text.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").prefix(200).map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return (Array((object["prompt"] as! String).utf8), Array((object["response"] as! String).utf8))
        }
    }

    /// Long real prompts and responses: the truncated encoding lays out exactly as the full one.
    @Test(arguments: [8, 64, 256])
    func layoutEqualsTheFullEncoding(context: Int) throws {
        for (prompt, response) in try Self.realRows() + [(Array(TokenizerTests.prose.utf8), Array(TokenizerTests.prose.utf8))] {
            let full = Self.tokenizer.example(prompt: prompt, response: response)
            let cut = Self.tokenizer.example(prompt: prompt, response: response, context: context)
            let a = full.layout(context: context), b = cut.layout(context: context)
            #expect(a.input == b.input)
            #expect(a.targets.map(\.position) == b.targets.map(\.position))
            #expect(a.targets.map(\.token) == b.targets.map(\.token))
        }
    }

    /// A 1 MB row of one letter and a 1 MB row of CJK (one chunk each: bytes ≥ 0x80 are letters) cost
    /// about what a row that fills the context costs, counted in bytes handed to the piece encoder.
    @Test func megabyteRowsAreBounded() {
        let context = 256
        let small = Array(String(repeating: TokenizerTests.prose + " ", count: 4).utf8)   // fills the context
        let letter = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
        let cjk = Array(String(repeating: "東京の天気は晴れです。私は日本語を勉強しています。", count: (1 << 20) / 72).utf8)
        func work(_ prompt: [UInt8], _ response: [UInt8]) -> Int {
            let tokenizer = try! Tokenizer(serialized: Self.tokenizer.serialized())   // fresh cache and counter
            let example = tokenizer.example(prompt: prompt, response: response, context: context)
            #expect(example.layout(context: context).input.count == context)
            return tokenizer.encodedBytes
        }
        let reference = work(small, small)
        for (name, row) in [("letter", letter), ("CJK", cjk)] {
            for (prompt, response) in [(row, small), (small, row), (row, row)] {
                let bytes = work(prompt, response)
                #expect(bytes <= 4 * reference + 4 * Tokenizer.maxPieceBytes, "\(name): \(bytes) bytes encoded vs \(reference) for a row that fills the context")
            }
        }
    }
}
