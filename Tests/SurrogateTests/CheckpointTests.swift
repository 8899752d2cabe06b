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

    /// A real model checkpoint, as the daemon stores them (tiny, so thousands of decodes stay fast).
    /// Unchecked: concurrent tests only read it (its parameters and config, and encode reads them).
    nonisolated(unsafe) static let model = Model(config: .tiny, seed: 5)
    static let tokenizer = Tokenizer(merges: [(97, 98), (259, 99), (32, 116)])
    static let metadata = ["kind": "val", "epoch": "3"]
    static let modelBytes = SurrogateCheckpoint.encode(model: model, tokenizer: tokenizer, metadata: metadata)

    @Test func roundTripIsBitExact() throws {
        let file = Self.sample()
        let decoded = try CheckpointFile.decode(file.encoded())
        #expect(decoded == file)
        #expect(decoded.tensors[0].sign == .minus)
        #expect(decoded.tensors[1].bitPattern == 0x7FC0_1234)
    }

    @Test func modelRoundTripsThroughACheckpoint() throws {
        let tokenizer = Tokenizer.train(sample: [Array("hello hello world".utf8)], vocabSize: 270)
        let restored = try SurrogateCheckpoint.decode(SurrogateCheckpoint.encode(model: Self.model, tokenizer: tokenizer, metadata: ["k": "v"]))
        #expect(restored.model.parameters == Self.model.parameters)
        #expect(restored.model.config == Self.model.config)
        #expect(restored.tokenizer == tokenizer)
        #expect(restored.metadata == ["k": "v"])
    }

    @Test func everyCorruptionIsRejected() {
        let bytes = Self.sample().encoded()
        #expect(throws: SurrogateError.self, "empty") { try CheckpointFile.decode([]) }
        #expect(throws: SurrogateError.self, "magic") { try CheckpointFile.decode([0x58] + bytes.dropFirst()) }
        var version = bytes; version[8] = 9
        #expect(throws: SurrogateError.self, "version") { try CheckpointFile.decode(version) }
        #expect(throws: SurrogateError.self, "trailing") { try CheckpointFile.decode(bytes + [0]) }
        for cut in [9, 12, 20, 44, bytes.count / 2, bytes.count - 33, bytes.count - 32, bytes.count - 1] {
            #expect(throws: SurrogateError.self, "truncated at \(cut)") { try CheckpointFile.decode(Array(bytes.prefix(cut))) }
        }
    }

    // MARK: - Fuzz by region

    /// Seeded flips, overwrites, truncations and insertions in every region of a real model checkpoint.
    /// With a checksum over the whole file each one must be refused with a ``SurrogateError``; the only
    /// other acceptable outcome (a mutation that changed nothing) is decoding to the identical model.
    /// Without the whole-file checksum the config, tokenizer and metadata mutations decode silently.
    @Test(arguments: CheckpointRegions.Name.allCases)
    func everyMutationOfARegionIsRefused(_ name: CheckpointRegions.Name) throws {
        let bytes = Self.modelBytes
        let regions = try CheckpointRegions(bytes)
        let region = regions[name]
        var g = SplitMix64(seed: 1000 + UInt64(name.rawValue))
        var refused = 0, unchanged = 0
        for trial in 0..<300 {
            let (mutated, what) = Mutation.random(in: region, of: bytes, using: &g)
            do {
                let decoded = try SurrogateCheckpoint.decode(mutated)
                let changedNothing = mutated == bytes
                #expect(changedNothing, "trial \(trial) \(what) in \(name) decoded: the checksum missed a change")
                #expect(decoded.model.parameters.elementsEqual(Self.model.parameters) { $0.bitPattern == $1.bitPattern })
                #expect(decoded.model.config == Self.model.config && decoded.tokenizer == Self.tokenizer && decoded.metadata == Self.metadata)
                unchanged += 1
            } catch is SurrogateError {
                refused += 1
            } catch {
                Issue.record("trial \(trial) \(what) in \(name) threw \(type(of: error)), not a SurrogateError: \(error)")
            }
        }
        #expect(refused + unchanged == 300)
        #expect(refused >= 290, "\(name): only \(refused) of 300 mutations changed the file")
    }

    /// Format version 1 (payload-only checksum) is still read: what the daemon's tables and
    /// `tovd pretrain` files written before version 2 hold.
    @Test func versionOneIsStillRead() throws {
        let v1 = try CheckpointRegions(Self.modelBytes).versionOne()
        let decoded = try SurrogateCheckpoint.decode(v1)
        #expect(decoded.model.parameters == Self.model.parameters)
        #expect(decoded.model.config == Self.model.config && decoded.tokenizer == Self.tokenizer && decoded.metadata == Self.metadata)

        // Its payload checksum still guards the parameters; nothing it holds can crash the decoder.
        let regions = try CheckpointRegions(v1, version: 1)
        var g = SplitMix64(seed: 11)
        for name in CheckpointRegions.Name.allCases where name != .trailer {
            for _ in 0..<100 {
                let (mutated, what) = Mutation.random(in: regions[name], of: v1, using: &g)
                do {
                    let decoded = try SurrogateCheckpoint.decode(mutated)
                    #expect(decoded.model.parameters == Self.model.parameters, "v1 \(what) in \(name) changed the parameters")
                    try decoded.model.config.validate()
                } catch is SurrogateError {
                } catch {
                    Issue.record("v1 \(what) in \(name) threw \(type(of: error)): \(error)")
                }
            }
        }
    }

    /// The file the version 1 writer itself wrote (tovd at f98f361, before the whole-file checksum), laid
    /// out again here from its parts by the helper's `versionOne()` and pinned by that file's SHA-256, so
    /// no binary fixture is committed: equal digests mean these are the old writer's bytes, which the
    /// decoder must still read. The config JSON is spelled as that writer spelled it (its key order came
    /// from an unordered dictionary; today's writer may order keys differently).
    @Test func aFileFromTheVersionOneWriterIsRead() throws {
        let config = #"{"layers":1,"width":4,"vocab_size":259,"heads":1,"context":2}"#
        let parts = CheckpointFile(configJSON: Array(config.utf8), tokenizer: Tokenizer(merges: []).serialized(),
                                   metadata: ["kind": "theta0", "source": "f98f361"], tensors: (0..<1296).map { Float(sin(Double($0))) })
        let bytes = try CheckpointRegions(parts.encoded()).versionOne()
        #expect(bytes.count == 5_399)
        #expect(SHA256.hex(SHA256.digest(of: bytes)) == "2ecb278560e78800bcc3eb0a0f1adb0ca7b251a8474bd2f7f29ea3e6d86a8a25")
        let checkpoint = try SurrogateCheckpoint.decode(bytes)
        #expect(checkpoint.model.config == ModelConfig(layers: 1, width: 4, heads: 1, context: 2, vocabSize: 259))
        #expect(checkpoint.metadata == ["kind": "theta0", "source": "f98f361"])
        #expect(checkpoint.model.parameters == parts.tensors)
    }

    /// Random and mutated small inputs through both decoders: any failure is a SurrogateError.
    @Test func fuzzDecodersWithArbitraryInput() {
        let tokenizer = Tokenizer(merges: [(97, 98), (259, 99)]).serialized()
        var g = SplitMix64(seed: 77)
        for seedInput in [Array(Self.modelBytes.prefix(200)), tokenizer] {
            for _ in 0..<20_000 {
                var input = g.next() % 4 == 0 ? (0..<Int(g.next() % 64)).map { _ in UInt8(truncatingIfNeeded: g.next()) } : seedInput
                for _ in 0..<Int(g.next() % 4) where !input.isEmpty {
                    input[Int(g.next() % UInt64(input.count))] = UInt8(truncatingIfNeeded: g.next())
                }
                if g.next() % 3 == 0 { input = Array(input.prefix(Int(g.next() % UInt64(input.count + 1)))) }
                let decoders: [() throws -> Void] = [{ _ = try SurrogateCheckpoint.decode(input) }, { _ = try Tokenizer(serialized: input) }]
                for decode in decoders {
                    do { try decode() } catch is SurrogateError {} catch { Issue.record("\(type(of: error)): \(error)") }
                }
            }
        }
    }

    // MARK: - The config is data

    /// Files with a correct checksum but a config the model cannot be built from: each is refused,
    /// none traps (a `heads` of 0 used to divide by zero, 3 failed a precondition).
    @Test(arguments: [
        #"{"layers":2,"width":16,"heads":0,"context":16,"vocab_size":300}"#,
        #"{"layers":2,"width":16,"heads":3,"context":16,"vocab_size":300}"#,
        #"{"layers":2,"width":16,"heads":32,"context":16,"vocab_size":300}"#,
        #"{"layers":2,"width":16,"heads":-2,"context":16,"vocab_size":300}"#,
        #"{"layers":0,"width":16,"heads":2,"context":16,"vocab_size":300}"#,
        #"{"layers":2,"width":0,"heads":2,"context":16,"vocab_size":300}"#,
        #"{"layers":2,"width":16,"heads":2,"context":1,"vocab_size":300}"#,
        #"{"layers":2,"width":16,"heads":2,"context":16,"vocab_size":12}"#,
        #"{"layers":2,"width":1099511627776,"heads":2,"context":16,"vocab_size":300}"#,
        #"{"layers":256,"width":16384,"heads":2,"context":65536,"vocab_size":1048576}"#,
        #"{"layers":2.5,"width":16,"heads":2,"context":16,"vocab_size":300}"#,
        #"{"layers":"2","width":16,"heads":2,"context":16,"vocab_size":300}"#,
        #"{"layers":2,"width":16,"heads":2,"context":16,"vocabSize":300}"#,
        #"{"layers":2,"width":16,"heads":2,"context":16,"vocab_size":null}"#,
        #"{"layers":1e300,"width":16,"heads":2,"context":16,"vocab_size":300}"#,
        #"[]"#, "", "not json",
    ])
    func unusableConfigsAreRefused(_ json: String) {
        let file = CheckpointFile(configJSON: Array(json.utf8), tokenizer: Self.tokenizer.serialized(), metadata: [:],
                                  tensors: Self.model.parameters)
        #expect(throws: SurrogateError.self, "\(json)") { try SurrogateCheckpoint.decode(file.encoded()) }
    }

    /// Seeded changes to the config JSON's digits, written with a correct checksum (as a buggy writer
    /// or a forged file would): each decode throws or yields a config that validates.
    @Test func fuzzedConfigsEitherThrowOrValidate() throws {
        let json = Array(try JSONEncoder().encode(Self.model.config))
        let digits = json.indices.filter { json[$0] >= 0x30 && json[$0] <= 0x39 }
        var g = SplitMix64(seed: 4)
        var decoded = 0
        for _ in 0..<400 {
            var mutated = json
            for _ in 0...Int(g.next() % 2) {
                mutated[digits[Int(g.next() % UInt64(digits.count))]] = [0x30, 0x31, 0x32, 0x33, 0x39, 0x2D][Int(g.next() % 6)]
            }
            let file = CheckpointFile(configJSON: mutated, tokenizer: Self.tokenizer.serialized(), metadata: [:], tensors: Self.model.parameters)
            do {
                let checkpoint = try SurrogateCheckpoint.decode(file.encoded())
                try checkpoint.model.config.validate()
                #expect(checkpoint.model.config.width % checkpoint.model.config.heads == 0)
                decoded += 1
            } catch is SurrogateError {
            } catch {
                Issue.record("\(String(decoding: mutated, as: UTF8.self)) threw \(type(of: error)): \(error)")
            }
        }
        // Changes to `heads` (and no-op changes) keep the parameter count, so some decode: they must validate.
        #expect(decoded > 0)
    }

    /// A header that promises far more parameters than its LZ4 frame can hold is refused before
    /// anything is allocated for them (a correct checksum does not make the promise true).
    @Test func aParameterCountTheFrameCannotHoldIsRefused() throws {
        let regions = try CheckpointRegions(Self.sample().encoded())
        var header = regions.headerBytes
        let at = header.count - 8
        for (i, byte) in (0..<8).map({ UInt8(truncatingIfNeeded: UInt64(1 << 32) >> (8 * UInt64($0))) }).enumerated() { header[at + i] = byte }
        let forged = regions.reassembled(version: 2, header: header)
        let error = #expect(throws: SurrogateError.self) { try CheckpointFile.decode(forged) }
        #expect(error?.message.contains("more than a") == true, "\(String(describing: error))")
    }

    // MARK: - The stored hash

    @Test func theStoredSHA256IsChecked() throws {
        let bytes = Self.modelBytes
        let recorded = SHA256.hexDigest(of: Data(bytes))
        #expect(try SurrogateCheckpoint.decode(bytes, expectedSHA256: recorded).model.parameters == Self.model.parameters)
        #expect(try SurrogateCheckpoint.decode(bytes, expectedSHA256: recorded.uppercased()).metadata == Self.metadata)

        // Another valid checkpoint in the row (e.g. θ_val of another epoch) is not the one recorded.
        let other = SurrogateCheckpoint.encode(model: Self.model, tokenizer: Self.tokenizer, metadata: ["kind": "val", "epoch": "4"])
        #expect(try SurrogateCheckpoint.decode(other).metadata["epoch"] == "4")
        let error = #expect(throws: SurrogateError.self) { try SurrogateCheckpoint.decode(other, expectedSHA256: recorded) }
        #expect(error?.message.contains("recorded when it was written") == true, "\(String(describing: error))")
        #expect(throws: SurrogateError.self) { try SurrogateCheckpoint.decode(bytes, expectedSHA256: "") }
    }
}

/// Where each region of an encoded checkpoint lies, read the way docs/checkpoint-format.md
/// describes the layout (independently of the decoder under test).
struct CheckpointRegions {
    enum Name: Int, CaseIterable {
        case magic, version, headerLength, config, tokenizer, metadata, tensorCount, frameLength, frame, trailer
    }

    let bytes: [UInt8]
    let ranges: [Name: Range<Int>]
    /// Version 1's payload digest (empty for version 2).
    let payloadDigest: Range<Int>

    init(_ bytes: [UInt8], version: UInt32 = 2) throws {
        self.bytes = bytes
        func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        var r: [Name: Range<Int>] = [.magic: 0..<8, .version: 8..<12, .headerLength: 12..<16]
        let headerEnd = 16 + u32(12)
        r[.config] = 16..<(20 + u32(16))
        r[.tokenizer] = r[.config]!.upperBound..<(r[.config]!.upperBound + 4 + u32(r[.config]!.upperBound))
        var at = r[.tokenizer]!.upperBound + 4
        for _ in 0..<u32(r[.tokenizer]!.upperBound) { at += 4 + u32(at); at += 4 + u32(at) }
        r[.metadata] = r[.tokenizer]!.upperBound..<at
        r[.tensorCount] = at..<(at + 8)
        payloadDigest = (at + 8)..<headerEnd
        r[.frameLength] = headerEnd..<(headerEnd + 8)
        r[.frame] = (headerEnd + 8)..<(headerEnd + 8 + u64(headerEnd))
        r[.trailer] = r[.frame]!.upperBound..<bytes.count
        guard payloadDigest.count == (version == 1 ? 32 : 0), r[.trailer]!.count == (version == 1 ? 0 : 32) else {
            throw SurrogateError(.checkpoint, "test helper: not a version \(version) layout")
        }
        ranges = r
    }

    subscript(name: Name) -> Range<Int> { ranges[name]! }

    /// Config, tokenizer, metadata and tensor count: the header of version 2.
    var headerBytes: [UInt8] { Array(bytes[self[.config].lowerBound..<self[.tensorCount].upperBound]) }

    /// The file again with another version, header and (for version 1) payload digest.
    func reassembled(version: UInt32, header: [UInt8], payloadDigest: [UInt8] = []) -> [UInt8] {
        var out = CheckpointFile.magic
        ByteWriter.append(version, to: &out)
        ByteWriter.appendBlob(header + payloadDigest, to: &out)
        out.append(contentsOf: bytes[self[.frameLength].lowerBound..<self[.frame].upperBound])
        if version >= 2 { out.append(contentsOf: SHA256.digest(of: out)) }
        return out
    }

    /// This version 2 file as version 1 wrote it: the payload SHA-256 at the end of the header, no trailer.
    func versionOne() throws -> [UInt8] {
        let file = try CheckpointFile.decode(bytes)
        return reassembled(version: 1, header: headerBytes, payloadDigest: SHA256.digest(of: file.payload))
    }
}

/// One seeded change to a file, inside a given byte range.
enum Mutation {
    static func random(in region: Range<Int>, of bytes: [UInt8], using g: inout SplitMix64) -> ([UInt8], String) {
        var out = bytes
        let at = region.lowerBound + Int(g.next() % UInt64(region.count))
        switch g.next() % 5 {
        case 0:
            let bit = Int(g.next() % 8)
            out[at] ^= UInt8(1 << bit)
            return (out, "bit \(bit) flipped at \(at)")
        case 1:
            let n = min(1 + Int(g.next() % 4), region.upperBound - at)
            for i in at..<(at + n) { out[i] = UInt8(truncatingIfNeeded: g.next()) }
            return (out, "\(n) bytes overwritten at \(at)")
        case 2:
            return (Array(out.prefix(at)), "truncated at \(at)")
        case 3:
            let extra = (0..<(1 + Int(g.next() % 16))).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            out.insert(contentsOf: extra, at: at)
            return (out, "\(extra.count) bytes inserted at \(at)")
        default:
            // Extended at the region's end (for the trailer: bytes after the file).
            let extra = (0..<(1 + Int(g.next() % 16))).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            out.insert(contentsOf: extra, at: region.upperBound)
            return (out, "\(extra.count) bytes appended at \(region.upperBound)")
        }
    }
}
