import Foundation

/// The seeds of one evaluation seed s, one stream per use, so no two uses share a draw.
///
/// The scored policies keep the daemon's seed s·1000 (Score+Random's random half uses it); the random
/// baseline used to draw with the same seed (draw 0), so it shared about half its rows with Score+Random's
/// random half and the two were not independent. Every other stream is a SplitMix64 finalisation of
/// (salt, s), independent of s·1000 and of each other.
public enum SeedStream {
    public static func policy(_ seed: Int) -> Int64 { Int64(seed * 1000) }
    public static func randomBaseline(_ seed: Int) -> Int64 { mix(0x5241_4e44_4f4d, seed) }
    public static func dsir(_ seed: Int) -> Int64 { mix(0x4453_4952, seed) }
    public static func lengthMatched(_ seed: Int) -> Int64 { mix(0x4c45_4e47_5448, seed) }
    /// The proxy's data order: the same for every arm and policy of seed s (the comparisons pair by seed).
    public static func fineTune(_ seed: Int) -> UInt64 { UInt64(seed) }

    static func mix(_ salt: UInt64, _ seed: Int) -> Int64 {
        var z = salt &* 0x9e37_79b9_7f4a_7c15 &+ UInt64(seed) &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return Int64(bitPattern: z ^ (z >> 31))
    }
}
