import Foundation

/// CPU features read at run time (never assumed at build time), for the benchmark report.
public enum CPUFeatures {
    static let flags: Set<String> = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: ":", maxSplits: 1).last?.split(separator: " ").map(String.init) ?? [])
    }()

    public static var modelName: String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }) else { return "unknown CPU" }
        return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    }

    public static var hasAVX2: Bool { flags.contains("avx2") }
    public static var hasAVX512: Bool { flags.contains("avx512f") }
    public static var hasAVX512BF16: Bool { flags.contains("avx512_bf16") }

    public static var summary: String {
        "\(modelName); \(ProcessInfo.processInfo.activeProcessorCount) cores; AVX2 \(hasAVX2 ? "yes" : "no"), AVX-512 \(hasAVX512 ? "yes" : "no"), AVX-512 BF16 \(hasAVX512BF16 ? "yes" : "no")"
    }
}
