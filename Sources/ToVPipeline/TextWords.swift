/// Words of a text as the evaluation's context checks and the Z_val signal's grouping compare them:
/// lower-cased runs of ASCII letters and digits (bytes ≥ 0x80 count as letters, so non-English words
/// stay whole), hashed with 64-bit FNV-1a, on UTF-8 bytes without building strings.
public enum TextWords {
    /// The hash of each word of `bytes`.
    public static func hashes<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> [UInt64] {
        var out: [UInt64] = []
        var h: UInt64 = fnvOffset, inWord = false
        for b in bytes {
            if let c = wordByte(b) {
                h = (h ^ UInt64(c)) &* fnvPrime
                inWord = true
            } else if inWord {
                out.append(h)
                h = fnvOffset
                inWord = false
            }
        }
        if inWord { out.append(h) }
        return out
    }

    /// One hash of a run of word hashes (order matters): the key of a shingle or an anchor.
    public static func run(_ words: ArraySlice<UInt64>) -> UInt64 {
        words.reduce(0x9e37_79b9_7f4a_7c15) { ($0 ^ $1) &* 0x100_0000_01b3 &+ 0x632b_e59b }
    }

    static let fnvOffset: UInt64 = 0xcbf2_9ce4_8422_2325, fnvPrime: UInt64 = 0x100_0000_01b3

    /// The byte as it counts in a word (upper-case ASCII lowered), or nil for a separator.
    @inline(__always) public static func wordByte(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x41...0x5a: return b + 0x20
        case 0x61...0x7a, 0x30...0x39, 0x80...: return b
        default: return nil
        }
    }
}
