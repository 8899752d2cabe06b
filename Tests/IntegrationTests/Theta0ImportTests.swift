@testable import Daemon
import Foundation
import PQ
import Surrogate
import Testing
import TovTesting

/// Issue 25, item 1: a θ0 imported with the real `tovd base import` and named in the setting `theta0`
/// starts the next base model, and a θ0 the daemon cannot use is reported without stopping refreshes.
@Suite("Imported θ0", .serialized)
struct Theta0ImportTests {
    static let daemonArguments = ScoringOutcomeTests.daemonArguments

    /// A real θ0 checkpoint, as `tovd pretrain` writes one, of the given shape (TinyPipeline's surrogate
    /// by default), written to a temporary file. Returns (path, its SHA-256).
    static func writeTheta0(width: Int = 16) throws -> (path: String, sha256: String) {
        let sample = (0..<40).map { Array("prompt \($0) response text \($0 * 7)".utf8) }
        let tokenizer = Tokenizer.train(sample: sample, vocabSize: 300)
        let model = Model(config: ModelConfig(layers: 1, width: width, heads: 2, context: 32, vocabSize: 300), seed: 7)
        let bytes = SurrogateCheckpoint.encode(model: model, tokenizer: tokenizer, metadata: ["kind": "theta0"])
        let path = NSTemporaryDirectory() + "theta0-\(UUID().uuidString).tovckpt"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (path, SHA256.hexDigest(of: Data(bytes)))
    }

    /// Runs `tovd <arguments>` to its end; returns (exit status, output).
    static func tovd(_ arguments: [String], conninfo: String) async throws -> (Int32?, String) {
        let process = try TovdProcess(arguments, conninfo: conninfo)
        let status = await process.waitForExit()
        return (status, process.log)
    }

    @Test func anImportedTheta0StartsTheNextBaseModel() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let (_, firstBase) = try await ScoringOutcomeTests.settledPipeline(c, conninfo: conninfo)
            #expect(try await StatusReport.load(on: c).theta0 == "bootstrap")

            let file = try Self.writeTheta0()
            defer { try? FileManager.default.removeItem(atPath: file.path) }
            // A damaged file and a wrong --sha256 are refused before anything is stored.
            var damaged = try Data(contentsOf: URL(fileURLWithPath: file.path))
            damaged[damaged.count / 2] ^= 0xFF
            let damagedPath = file.path + ".damaged"
            try damaged.write(to: URL(fileURLWithPath: damagedPath))
            defer { try? FileManager.default.removeItem(atPath: damagedPath) }
            let (badStatus, badLog) = try await Self.tovd(["base", "import", damagedPath, "--name", "tiny-v1"], conninfo: conninfo)
            #expect(badStatus != 0 && badLog.contains("not a usable θ0 checkpoint"), "\(badLog)")
            let (shaStatus, _) = try await Self.tovd(["base", "import", file.path, "--name", "tiny-v1", "--sha256", String(repeating: "0", count: 64)],
                                                     conninfo: conninfo)
            #expect(shaStatus != 0)
            #expect(try await TovTestDatabase.count("tov.theta0s", on: c) == 0)

            let (status, log) = try await Self.tovd(["base", "import", file.path, "--name", "tiny-v1", "--sha256", file.sha256], conninfo: conninfo)
            #expect(status == 0, "\(log)")
            let stored = try await c.query("SELECT sha256, config->>'width' AS width FROM tov.theta0s WHERE name = 'tiny-v1'").first
            #expect(try stored?.get(String.self, "sha256") == file.sha256)
            #expect(try stored?.get(String.self, "width") == "16")
            // A name is never given to other bytes.
            let (again, againLog) = try await Self.tovd(["base", "import", file.path, "--name", "tiny-v1"], conninfo: conninfo)
            #expect(again != 0 && againLog.contains("already imported"), "\(againLog)")
            let (_, list) = try await Self.tovd(["base", "list"], conninfo: conninfo)
            #expect(list.contains("tiny-v1") && list.contains(file.sha256), "\(list)")

            try await c.execute("UPDATE tov.settings SET value = '\"tiny-v1\"' WHERE key = 'theta0'")
            let daemon = try TovdProcess(Self.daemonArguments, conninfo: conninfo)
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(60)) {
                try await TovTestDatabase.count("tov.model_versions m JOIN tov.base_models b USING (base_version)", on: c,
                                                where: "m.status = 'complete' AND b.theta0 = 'tiny-v1'") == 1
            }, "\(daemon.log.suffix(3000))")
            let base = try await c.query("SELECT base_version, reason FROM tov.base_models WHERE theta0 = 'tiny-v1'").first!
            let newBase = Int(try base.get(Int32.self, "base_version"))
            #expect(newBase > firstBase)
            #expect(try base.get(String.self, "reason") == "rebase: theta0 changed")
            // Its θ0 is the imported file, byte for byte; the bootstrap base's is not.
            let theta0SHA = try await c.query("SELECT sha256 FROM tov.checkpoints WHERE base_version = $1 AND kind = 'theta0'", [newBase])
                .first?.get(String.self, "sha256")
            #expect(theta0SHA == file.sha256)
            let bootstrapSHA = try await c.query("SELECT sha256 FROM tov.checkpoints WHERE base_version = $1 AND kind = 'theta0'", [firstBase])
                .first?.get(String.self, "sha256")
            #expect(bootstrapSHA != file.sha256)
            #expect(try await PipelineFigures.settle(on: c).isConsistent)
            let report = try await StatusReport.load(on: c)
            #expect(report.theta0 == "tiny-v1" && report.settingsError == nil, "\(report)")
            #expect(report.humanReadable.contains("from θ0 \"tiny-v1\" (imported)"))
        }
    }

    @Test func aMissingOrMisshapenTheta0IsReportedAndRefreshesGoOn() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let (first, base) = try await ScoringOutcomeTests.settledPipeline(c, conninfo: conninfo)
            try await c.execute("UPDATE tov.settings SET value = '\"nope\"' WHERE key = 'theta0'")
            let daemon = try TovdProcess(Self.daemonArguments, conninfo: conninfo)
            defer { daemon.terminate() }
            #expect(try await TovTestDatabase.eventually {
                try await StatusReport.load(on: c).settingsError?.contains("theta0 = \"nope\": no θ0 of that name is imported") == true
            }, "\(daemon.log.suffix(3000))")

            // A Z_val change still refreshes the current base model.
            try await c.execute("INSERT INTO tov.validation (prompt, response) VALUES ('row prompt', 'another response')")
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(60)) {
                try await TovTestDatabase.count("tov.model_versions", on: c,
                                                where: "status = 'complete' AND model_version > \(first) AND base_version = \(base)") == 1
            }, "\(daemon.log.suffix(3000))")

            // A θ0 of another shape (width 32; the surrogate says 16) is refused, with the setting to use.
            let wide = try Self.writeTheta0(width: 32)
            defer { try? FileManager.default.removeItem(atPath: wide.path) }
            let (status, log) = try await Self.tovd(["base", "import", wide.path, "--name", "wide"], conninfo: conninfo)
            #expect(status == 0, "\(log)")
            try await c.execute("UPDATE tov.settings SET value = '\"wide\"' WHERE key = 'theta0'")
            #expect(try await TovTestDatabase.eventually {
                try await StatusReport.load(on: c).settingsError?.contains("theta0 = \"wide\" is a 1×32") == true
            }, "\(daemon.log.suffix(3000))")
            #expect(try await TovTestDatabase.trainerDecidedTwice(on: c))
            // Nothing was started from either, and the selection is still the bootstrap's.
            #expect(try await TovTestDatabase.count("tov.base_models", on: c) == 1)
            #expect(try await StatusReport.load(on: c).theta0 == "bootstrap")

            // A θ0 that fits but whose stored bytes no longer check out: its base model fails once with
            // the reason, and the same settings are not retried in a loop.
            let tiny = try Self.writeTheta0()
            defer { try? FileManager.default.removeItem(atPath: tiny.path) }
            #expect(try await Self.tovd(["base", "import", tiny.path, "--name", "tiny"], conninfo: conninfo).0 == 0)
            try await c.execute("UPDATE tov.theta0s SET data = overlay(data placing '\\xdeadbeef'::bytea from 100 for 4) WHERE name = 'tiny'")
            try await c.execute("UPDATE tov.settings SET value = '\"tiny\"' WHERE key = 'theta0'")
            #expect(try await TovTestDatabase.eventually {
                try await StatusReport.load(on: c).settingsError?.contains("theta0 unusable: θ0 tiny cannot be loaded") == true
            }, "\(daemon.log.suffix(3000))")
            #expect(try await TovTestDatabase.trainerDecidedTwice(on: c))
            #expect(try await TovTestDatabase.count("tov.base_models", on: c, where: "status = 'failed' AND reason LIKE 'theta0 unusable%'") == 1)
            #expect(try await TovTestDatabase.count("tov.base_models", on: c) == 2)
            #expect(try await StatusReport.load(on: c).theta0 == "bootstrap")
            #expect(try await TovTestDatabase.eventually { try await PipelineFigures.settle(on: c).isConsistent })
        }
    }

    /// The down migration puts back exactly what the up changed: tov.status (which reads a.* and so
    /// is dropped and recreated) with its grant, the settings rule the table's CHECK calls, and the
    /// columns of tov.base_models.
    @Test func theMigrationsDownRestoresTheSchemaBeforeIt() async throws {
        try await TestDatabase.withFreshDatabase { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let version = try #require(Migration.all.first { $0.name == "theta0_import" }?.version)
            let migrator = Migrator()
            func schema() async throws -> [String] {
                try await c.query("""
                    SELECT pg_get_viewdef('tov.status'::regclass, true) AS a
                    UNION ALL SELECT pg_get_functiondef('tov.setting_is_valid(text,jsonb)'::regprocedure)
                    UNION ALL SELECT has_table_privilege('tov_reader', 'tov.status', 'SELECT')::text
                    UNION ALL SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
                        WHERE attrelid = 'tov.base_models'::regclass AND attnum > 0 AND NOT attisdropped
                    UNION ALL SELECT string_agg(key || '=' || value::text, ',' ORDER BY key) FROM tov.settings
                    UNION ALL SELECT count(*)::text FROM pg_class WHERE relname = 'theta0s'
                    """).map { try $0.get(String.self, "a") }
            }
            try await migrator.up(on: c, to: version - 1)
            let before = try await schema()
            try await migrator.up(on: c, to: version)
            let after = try await schema()
            #expect(after != before)
            #expect(after[0].contains("theta0"))
            #expect(try await migrator.down(on: c, steps: 1) == [version])
            let restored = try await schema()
            for (i, (was, now)) in zip(before, restored).enumerated() { #expect(was == now, "item \(i)") }
        }
    }

    /// The setting's domain: null or a θ0 name (the same rule as tov.theta0s.name); what the database
    /// accepts, Settings parses to the same value.
    @Test func theSettingIsNullOrAName() async throws {
        let cases: [(String, Bool)] = [
            ("null", true), (#""corpus-v1""#, true), (#""a.b_c-9""#, true), (#""""#, false), (#""-x""#, false),
            (#""a b""#, false), (#""a\nb""#, false), ("\"" + String(repeating: "x", count: 63) + "\"", true),
            ("\"" + String(repeating: "x", count: 64) + "\"", false), ("5", false), ("true", false), (#"{"name": "x"}"#, false),
        ]
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            for (json, expected) in cases {
                let valid = try await c.query("SELECT tov.setting_is_valid('theta0', $1::jsonb) AS valid", [json]).first!.get(Bool.self, "valid")
                #expect(valid == expected, "\(json)")
                guard valid else { continue }
                var settings = Settings()
                #expect(try settings.set("theta0", json: json))
                #expect(settings.theta0 == (json == "null" ? nil : String(json.dropFirst().dropLast())))
            }
        }
    }
}
