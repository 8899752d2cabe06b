import Foundation
import Testing
@testable import Surrogate

@Suite("Checkpoint codec")
struct CheckpointTests {
    static func sample() -> CheckpointFile {
        var tensors = (0..<5000).map { Float(sin(Double($0))) }
        tensors[0] = -0.0
        tensors[1] = Float(bitPattern: 0x7FC0_1234)   // a NaN with a payload
        tensors[2] = .infinity
        return CheckpointFile(configJSON: Array("{\"layers\":1}".utf8), tokenizer: Tokenizer(merges: [(97, 98)]).serialized(),
                              metadata: ["kind": "base", "epoch": "2"], tensors: tensors)
    }

    @Test func roundTripIsBitExact() throws {
        let file = Self.sample()
        let decoded = try CheckpointFile.decode(file.encoded())
        #expect(decoded == file)
        #expect(decoded.tensors[0].sign == .minus)
        #expect(decoded.tensors[1].bitPattern == 0x7FC0_1234)
    }

    @Test func everyCorruptionIsRejected() {
        let bytes = Self.sample().encoded()
        #expect(throws: SurrogateError.self, "empty") { try CheckpointFile.decode([]) }
        #expect(throws: SurrogateError.self, "magic") { try CheckpointFile.decode([0x58] + bytes.dropFirst()) }
        var version = bytes; version[8] = 9
        #expect(throws: SurrogateError.self, "version") { try CheckpointFile.decode(version) }
        #expect(throws: SurrogateError.self, "trailing") { try CheckpointFile.decode(bytes + [0]) }
        for cut in [9, 20, bytes.count / 2, bytes.count - 1] {
            #expect(throws: SurrogateError.self, "truncated at \(cut)") { try CheckpointFile.decode(Array(bytes.prefix(cut))) }
        }
        // A flipped bit anywhere: header, frame or payload checksum catch it.
        var g = SplitMix64(seed: 3)
        for _ in 0..<300 {
            var flipped = bytes
            let at = Int(g.next() % UInt64(bytes.count))
            flipped[at] ^= UInt8(1 << (g.next() % 8))
            #expect(throws: SurrogateError.self, "bit flip at \(at)") { try CheckpointFile.decode(flipped) }
        }
    }

    /// Seeded fuzz: mutated, truncated and random inputs must throw or decode, never crash.
    @Test func fuzzDecoders() {
        let checkpoint = Self.sample().encoded()
        let tokenizer = Tokenizer(merges: [(97, 98), (259, 99)]).serialized()
        var g = SplitMix64(seed: 77)
        var cases = 0
        for seedInput in [checkpoint, tokenizer] {
            let small = Array(seedInput.prefix(seedInput == checkpoint ? 200 : seedInput.count))
            for _ in 0..<50_000 {
                var input = g.next() % 4 == 0 ? (0..<Int(g.next() % 64)).map { _ in UInt8(truncatingIfNeeded: g.next()) } : small
                for _ in 0..<Int(g.next() % 4) where !input.isEmpty {
                    input[Int(g.next() % UInt64(input.count))] = UInt8(truncatingIfNeeded: g.next())
                }
                if g.next() % 3 == 0 { input = Array(input.prefix(Int(g.next() % UInt64(input.count + 1)))) }
                _ = try? CheckpointFile.decode(input)
                _ = try? Tokenizer(serialized: input)
                cases += 1
            }
        }
        #expect(cases == 100_000)
    }

    @Test func modelRoundTripsThroughACheckpoint() throws {
        let model = Model(config: .tiny, seed: 2)
        let tokenizer = Tokenizer.train(sample: [Array("hello hello world".utf8)], vocabSize: 270)
        let restored = try SurrogateCheckpoint.decode(SurrogateCheckpoint.encode(model: model, tokenizer: tokenizer, metadata: ["k": "v"]))
        #expect(restored.model.parameters == model.parameters)
        #expect(restored.model.config == model.config)
        #expect(restored.tokenizer == tokenizer)
        #expect(restored.metadata == ["k": "v"])
    }
}
