import Foundation

/// The PyTorch side of `tovd bench model|score|train`: Benchmarks/reference/torch_reference.py run with
/// python3 from PATH, its stderr dropped (a missing torch is not an error: the bench prints its own
/// figures alone).
enum TorchReference {
    /// Each stdout line of `torch_reference.py ARGUMENTS` as a JSON object (nil for a line that is not
    /// one), and the script's exit status; nil when the script is missing or python3 cannot start.
    static func run(_ arguments: [String]) -> (lines: [[String: Any]?], status: Int32)? {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Benchmarks/reference/torch_reference.py").path
        guard FileManager.default.fileExists(atPath: script) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        return (lines, process.terminationStatus)
    }
}
