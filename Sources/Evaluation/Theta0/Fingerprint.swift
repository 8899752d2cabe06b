import Foundation

/// FNV-1a 64: a fast content fingerprint for cache keys (not a cryptographic hash: a collision only
/// costs a wrong cache hit between two runs the user made on purpose different).
public struct Fingerprint: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func add(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01b3
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        value ^= 0xff
        value = value &* 0x0000_0100_0000_01b3
    }

    public mutating func add(_ string: String) { add(string.utf8) }

    public var hex: String { String(format: "%016llx", value) }
}
