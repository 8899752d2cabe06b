import Foundation
import PQ
import Testing
import TovTesting

/// `tovd import` with lines PostgreSQL would refuse, --strict, --into validation and unreadable files.
@Suite("tovd import")
struct ImportTests {
    static func file(_ lines: [String]) throws -> String {
        let path = NSTemporaryDirectory() + "tovd-import-\(UUID().uuidString.prefix(8)).jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func importing(_ arguments: [String], _ conninfo: String) async throws -> (status: Int32?, log: String) {
        let run = try TovdProcess(["import"] + arguments, conninfo: conninfo)
        let status = await run.waitForExit()
        return (status, run.log)
    }

    /// Issue 16's reproduction: a NUL in `source` on line 2 failed the COPY of the whole file. Now it
    /// and a `\u0000` inside `meta` are bad lines like any other.
    @Test func nulInSourceOrMetaIsABadLineNotAFailedFile() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let path = try Self.file([
                #"{"prompt": "p1", "response": "r1"}"#,
                #"{"prompt": "p2", "response": "r2", "source": "a\u0000b"}"#,
                #"{"prompt": "p3", "response": "r3"}"#,
                #"{"prompt": "p4", "response": "r4", "meta": {"note": "x\u0000y"}}"#,
                #"{"prompt": "p5", "response": "r5", "tags": ["ok", {"k\u0000": 1}]}"#,
                #"{"prompt": "p6", "response": "r6\u0000"}"#,
                #"{"prompt": "p7", "response": "r7", "source": "s7", "meta": {"note": "fine"}}"#,
            ])
            defer { try? FileManager.default.removeItem(atPath: path) }
            let (status, log) = try await Self.importing([path], conninfo)
            #expect(status == 0, "\(log)")
            #expect(log.contains("imported 3 rows into tov.candidates; skipped 4 bad lines"), "\(log)")
            for line in [2, 4, 5, 6] { #expect(log.contains(":line \(line): ") && log.contains("NUL"), "line \(line): \(log)") }
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let prompts = try await c.query("SELECT prompt FROM tov.candidates ORDER BY id").map { try $0.get(String.self, 0) }
            #expect(prompts == ["p1", "p3", "p7"])
        }
    }

    /// All or nothing: the bad line is the last of several chunks, and nothing of the chunks before
    /// it stays. (Before, NUL lines were skipped even under --strict and each chunk committed alone.)
    @Test func strictWritesNothingIfAnyLineIsBad() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let good = (1...7).map { #"{"prompt": "p\#($0)", "response": "r\#($0)"}"# }
            let path = try Self.file(good + [#"{"prompt": "p8", "response": "r8", "source": "a\u0000b"}"#])
            defer { try? FileManager.default.removeItem(atPath: path) }
            let (status, log) = try await Self.importing([path, "--strict", "--chunk-rows", "2"], conninfo)
            #expect(status != nil && status != 0, "\(log)")
            #expect(log.contains("line 8") && log.contains("nothing was imported"), "\(log)")
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            #expect(try await TovTestDatabase.count("tov.candidates", on: c) == 0)

            let clean = try Self.file(good)
            defer { try? FileManager.default.removeItem(atPath: clean) }
            let (cleanStatus, cleanLog) = try await Self.importing([clean, "--strict", "--chunk-rows", "2"], conninfo)
            #expect(cleanStatus == 0 && cleanLog.contains("imported 7 rows"), "\(cleanLog)")
        }
    }

    @Test func validationKeepsSource() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let path = try Self.file([#"{"prompt": "p", "response": "r", "source": "target_task", "lang": "en"}"#])
            defer { try? FileManager.default.removeItem(atPath: path) }
            let (status, log) = try await Self.importing([path, "--into", "validation"], conninfo)
            #expect(status == 0, "\(log)")
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let row = try await c.query("SELECT source, meta ->> 'lang' FROM tov.validation").first
            #expect(try row?.get(String.self, 0) == "target_task")
            #expect(try row?.get(String.self, 1) == "en")
        }
    }

    /// A file that cannot be read is an error with a message, not an empty import.
    @Test func anUnreadableFileIsAnError() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let directory = NSTemporaryDirectory() + "tovd-import-dir-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (status, log) = try await Self.importing([directory], conninfo)
            #expect(status != nil && status != 0, "\(log)")
            #expect(log.contains("cannot read") && log.contains("nothing was imported"), "\(log)")
        }
    }

    /// Defect 10 of issue 24: numbers in meta went through Int64/Double, so 18446744073709551615 was
    /// stored as 18446744073709552000 and 1e-400 as 0. jsonb's numeric holds both exactly; so must the
    /// import. A number beyond numeric is a bad line, not a failed chunk.
    @Test func metaNumbersAreStoredExactly() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let path = try Self.file([
                #"{"prompt": "p1", "response": "r1", "big": 18446744073709551615, "meta": {"tiny": 1e-400, "huge": 1e400, "x": [-9223372036854775809, 0.1000000000000000055511151231257827]}}"#,
                #"{"prompt": "p2", "response": "r2", "meta": {"n": 1e-16384}}"#,
                #"{"prompt": "p3", "response": "r3", "meta": {"n": 1e131071}}"#,
            ])
            defer { try? FileManager.default.removeItem(atPath: path) }
            let (status, log) = try await Self.importing([path], conninfo)
            #expect(status == 0, "\(log)")
            #expect(log.contains("imported 2 rows into tov.candidates; skipped 1 bad lines"), "\(log)")
            #expect(log.contains(":line 2: meta holds a number beyond PostgreSQL's numeric"), "\(log)")
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            // Compared as numeric, and as the text jsonb gives back.
            let row = try #require(try await c.query("""
                SELECT (meta->'big')::numeric = 18446744073709551615 AS big,
                       (meta->'tiny')::numeric = 1e-400 AS tiny, (meta->'tiny')::numeric > 0 AS tiny_positive,
                       (meta->'huge')::numeric = 1e400 AS huge,
                       (meta->'x'->0)::numeric = -9223372036854775809 AS below_int64,
                       (meta->'x'->1)::numeric = 0.1000000000000000055511151231257827 AS long_fraction,
                       meta->>'big' AS big_text
                FROM tov.candidates WHERE prompt = 'p1'
                """).first)
            for column in ["big", "tiny", "tiny_positive", "huge", "below_int64", "long_fraction"] {
                #expect(try row.get(Bool.self, column), "\(column)")
            }
            #expect(try row.get(String.self, "big_text") == "18446744073709551615")
            #expect(try await TovTestDatabase.count("tov.candidates", on: c, where: "prompt = 'p3' AND length(meta->>'n') = 131072") == 1)
        }
    }
}
