import Foundation
import Testing
@testable import Surrogate

@Suite struct SHA256Tests {
    @Test func knownVectors() {
        #expect(SHA256.hexDigest(of: Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hexDigest(of: Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hexDigest(of: Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func incrementalEqualsWhole() {
        var rng = SplitMix64(seed: 7)
        let bytes = (0..<5000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var h = SHA256()
        var i = 0
        for step in [1, 63, 64, 65, 100, 1000, 3000] where i < bytes.count {
            let j = min(i + step, bytes.count)
            if step % 2 == 0 { h.update(Data(bytes[i..<j])) } else { h.update(bytes[i..<j]) }
            i = j
        }
        h.update(Data(bytes[i...]))
        #expect(h.hexDigest() == SHA256.hexDigest(of: Data(bytes)))
    }
}

/// Small seeded generator for tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
