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
        #expect(SHA256.digest(of: bytes[...]) == SHA256.digest(of: bytes))
    }

    /// FIPS 180-4's long vector: a million "a", fed in uneven pieces.
    @Test func millionA() {
        var h = SHA256()
        for piece in [1, 999, 1 << 16, 1_000_000 - 1_000 - (1 << 16)] { h.update(Data(repeating: 0x61, count: piece)) }
        #expect(h.hexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// `SHA256` is a value: `digest()` leaves it usable and a copy hashes on independently (the
    /// libcrypto state behind it is copied on write).
    @Test func copiesAreIndependent() {
        var a = SHA256()
        a.update(Array("ab".utf8))
        let ab = a
        #expect(a.hexDigest() == a.hexDigest())
        a.update(Array("c".utf8))
        #expect(a.hexDigest() == SHA256.hexDigest(of: Data("abc".utf8)))
        #expect(ab.hexDigest() == SHA256.hexDigest(of: Data("ab".utf8)))
        var b = ab
        b.update(Data("d".utf8))
        #expect(b.hexDigest() == SHA256.hexDigest(of: Data("abd".utf8)))
        #expect(ab.hexDigest() == SHA256.hexDigest(of: Data("ab".utf8)))
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
