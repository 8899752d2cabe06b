import Daemon
import Foundation
import PQ
import Testing
import TovTesting

/// The `tovd` binary's user-facing commands against a real server.
@Suite("CLI")
struct CLITests {
    @Test func importReportsBadLinesAndLoadsTheRest() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let file = NSTemporaryDirectory() + "tovd-import-\(UUID().uuidString.prefix(8)).jsonl"
            defer { try? FileManager.default.removeItem(atPath: file) }
            let lines = [
                #"{"prompt": "p1", "response": "r1", "source": "s", "lang": "en"}"#,
                #"{"prompt": "tab\there", "response": "line\nbreak \\ backslash"}"#,
                #"not json at all"#,
                #"{"prompt": "missing response"}"#,
                #"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#,
                "",
                #"{"prompt": 5, "response": "wrong type"}"#,
            ]
            try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
            let run = try TovdProcess(["import", file], conninfo: conninfo)
            #expect(await run.waitForExit() == 0, "\(run.log)")
            #expect(run.log.contains("imported 3 rows into tov.candidates; skipped 3 bad lines"), "\(run.log)")
            #expect(run.log.contains(":line 3:") && run.log.contains(":line 4:") && run.log.contains(":line 7:"), "\(run.log)")

            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let rows = try await c.query("SELECT prompt, response, source, meta::text FROM tov.candidates ORDER BY id")
            // A failed import must fail this test, not crash the whole test process on rows[0].
            try #require(rows.count == 3, "\(run.log)")
            #expect(try rows.rows[0].get(String.self, 3).contains("\"lang\""))
            #expect(try rows.rows[1].get(String.self, 0) == "tab\there")
            #expect(try rows.rows[1].get(String.self, 1) == "line\nbreak \\ backslash")
            #expect(try rows.rows[2].get(String.self, 1) == "hello")

            let validation = try TovdProcess(["import", file, "--into", "validation", "--strict"], conninfo: conninfo)
            #expect(await validation.waitForExit() != 0)
            #expect(validation.log.contains("nothing was imported"))
            #expect(try await TovTestDatabase.count("tov.validation", on: c) == 0)

            let status = try TovdProcess(["status", "--json"], conninfo: conninfo)
            #expect(await status.waitForExit() == 0)
            let json = try JSONSerialization.jsonObject(with: Data(status.log.utf8)) as! [String: Any]
            for key in ["pool_rows", "pending", "rejected", "selected", "zval_version", "model_version"] {
                #expect(json.keys.contains(key), "status --json lacks \(key)")
            }
            #expect(json["pool_rows"] as? Int == 3)
        }
    }

    @Test func systemdUnitsVerify() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else { return }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = NSTemporaryDirectory() + "tovd-units-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for unit in ["tovd.service", "tovd@.service"] {
            // verify checks that ExecStart's binary exists: point it at the one just built.
            let text = try String(contentsOf: root.appendingPathComponent("systemd/\(unit)"), encoding: .utf8)
                .replacingOccurrences(of: "/usr/local/bin/tovd", with: TovdProcess.executable.path)
            try text.write(toFile: "\(dir)/\(unit)", atomically: true, encoding: .utf8)
        }
        for unit in ["tovd.service", "tovd@main.service"] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
            process.arguments = ["verify", unit == "tovd.service" ? "\(dir)/tovd.service" : "\(dir)/tovd@.service:\(unit)"]
            process.currentDirectoryURL = URL(fileURLWithPath: dir)
            let pipe = Pipe()
            process.standardError = pipe
            process.standardOutput = pipe
            try process.run()
            process.waitUntilExit()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(process.terminationStatus == 0, "\(unit): \(output)")
        }
    }
}
