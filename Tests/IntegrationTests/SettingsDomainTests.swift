import Daemon
import Foundation
import PQ
import Selection
import Surrogate
import Testing
import TovTesting

/// `tov.setting_is_valid` (migration 005) is the one definition of every setting: whatever it
/// accepts, the daemon's parser turns into a usable value; whatever it refuses, the daemon reports
/// and never uses. Real server, real function, real parser.
@Suite("Settings: the database and the daemon agree")
struct SettingsDomainTests {
    /// The database's verdict and the text it stores (jsonb normalises: 1e2 is stored as 100) for
    /// each (key, JSON text), in one round trip. The function must never raise: the daemon's
    /// settings query would fail with it. If it does, each value is asked alone, so the issue
    /// names every value it raised on (counted as refused).
    static func verdicts(_ values: [(key: String, json: String)], on c: Connection) async throws -> [(stored: String, valid: Bool)] {
        let sql = """
            SELECT v::jsonb::text, tov.setting_is_valid(k, v::jsonb)
            FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(k, v, i) ORDER BY i
            """
        if let rows = try? await c.query(sql, [values.map(\.key), values.map(\.json)]) {
            return try rows.map { (try $0.get(String.self, 0), try $0.get(Bool.self, 1)) }
        }
        var verdicts: [(stored: String, valid: Bool)] = []
        for (key, json) in values {
            do {
                let row = try await c.query(sql, [[key], [json]]).first!
                verdicts.append((try row.get(String.self, 0), try row.get(Bool.self, 1)))
            } catch {
                Issue.record("tov.setting_is_valid raised for \(key) = \(json.prefix(60)): \(error)")
                verdicts.append((json, false))
            }
        }
        return verdicts
    }

    /// What the daemon needs of an accepted value, beyond parsing: exact integers, and numbers
    /// and shapes it can run with. Returns a failure description, nil when the value is usable.
    static func unusable(_ key: String, _ stored: String) -> String? {
        var settings = Settings()
        do {
            guard try settings.set(key, json: stored) else { return "a key the database accepts is unknown to Settings" }
        } catch {
            return "accepted by the database, refused by Settings: \(error)"
        }
        let exact: Int64? = switch key {
        case "bins": Int64(settings.selection.bins)
        case "seed": settings.selection.seed
        case "u_size": Int64(settings.uSize)
        case "epochs": Int64(settings.epochs)
        case "pretrain_steps": Int64(settings.pretrainSteps)
        case "max_attempts": Int64(settings.maxAttempts)
        case "max_text_bytes": Int64(settings.maxTextBytes)
        default: nil
        }
        if let exact, String(exact) != stored { return "parsed as \(exact)" }
        switch key {
        case "lr": if !(settings.learningRate > 0) { return "lr \(settings.learningRate)" }
        case "val_lr_ratio": if !(settings.valLearningRateRatio > 0) { return "ratio \(settings.valLearningRateRatio)" }
        case "zval_debounce_seconds": if !(settings.zvalDebounceSeconds >= 0 && settings.zvalDebounceSeconds.isFinite) { return "debounce" }
        case "rebase_growth": if !(settings.rebaseGrowth == 0 || settings.rebaseGrowth > 1) { return "growth \(settings.rebaseGrowth)" }
        case "budget":
            switch settings.selection.budget {
            case .rows(let n): if !stored.contains("\(n)}") { return "rows parsed as \(n)" }
            case .fraction(let f): if !(f > 0 && f <= 1) { return "fraction \(f)" }
            }
        case "surrogate":
            let s = settings.surrogate
            guard s.layers >= 1, s.width >= 1, s.heads >= 1, s.context >= 2, s.vocab >= 259, s.width % s.heads == 0 else {
                return "shape \(s) would stop the process in ModelConfig"
            }
            // The shape the trainer builds; a violated precondition here kills the test process.
            let config = ModelConfig(layers: s.layers, width: s.width, heads: s.heads, context: s.context, vocabSize: s.vocab)
            if config.width != s.width { return "config" }
        default: break
        }
        return nil
    }

    /// The cases issue 16 reproduced, and the bounds on each side.
    @Test func namedCases() async throws {
        let cases: [(String, String, Bool)] = [
            ("seed", "9223372036854775806", true), ("seed", "-9223372036854775806", true), ("seed", "9223372036854775807", false),
            ("seed", "1.5", false), ("seed", "\"1\"", false),
            ("surrogate", #"{"width": 33, "heads": 2}"#, false), ("surrogate", #"{"width": 33, "heads": 3}"#, true),
            ("surrogate", #"{"heads": 3}"#, false),  // the default width 256 counts
            ("surrogate", #"{"width": 36}"#, true), ("surrogate", #"{"width": 34}"#, false),
            ("surrogate", #"{"layers": 2.5}"#, false), ("surrogate", #"{"layers": "4"}"#, false),
            ("surrogate", #"{"layers": 4.0}"#, false), ("surrogate", #"{"layer": 4}"#, false),
            ("surrogate", #"{"layers": 6, "width": 1024, "heads": 16}"#, true),  // 80 M parameters
            ("surrogate", #"{"layers": 8, "width": 1024, "heads": 16}"#, false),  // 106 M
            ("surrogate", #"{"layers": 48, "width": 4096, "heads": 64}"#, false),
            ("budget", #"{"rows": 1e15}"#, false), ("budget", #"{"rows": 2147483647}"#, true), ("budget", #"{"rows": 2147483648}"#, false),
            ("budget", #"{"fraction": 0.05, "rows": 1}"#, false), ("budget", #"{"fraction": 0.05, "note": "x"}"#, false),
            ("budget", #"{"fraction": 1e-400}"#, false), ("budget", #"{"fraction": 1e400}"#, false), ("budget", #"{"fraction": 1}"#, true),
            ("epochs", "2.0", false), ("epochs", "1e1", true), ("bins", "0", false), ("bins", "100", true),
            ("lr", "1e-400", false), ("lr", "0.99999999999999999999", true), ("lr", "1", false),
            ("rebase_growth", "0", true), ("rebase_growth", "0.0", true), ("rebase_growth", "1", false),
            ("rebase_growth", "1.0000000000000000001", false), ("rebase_growth", "1.1", true), ("rebase_growth", "-2", false),
            ("max_text_bytes", "1073741824", true), ("max_text_bytes", "1073741825", false),
            ("no_such_key", "1", false), ("policy", "null", false),
        ]
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let verdicts = try await Self.verdicts(cases.map { ($0.0, $0.1) }, on: c)
            for ((key, json, expected), verdict) in zip(cases, verdicts) {
                #expect(verdict.valid == expected, "\(key) = \(json)")
                if verdict.valid { #expect(Self.unusable(key, verdict.stored) == nil, "\(key) = \(verdict.stored)") }
            }
            // The table's CHECK is this function: the same verdicts on INSERT/UPDATE.
            for (key, json, expected) in cases where key != "no_such_key" {
                do {
                    try await c.execute("UPDATE tov.settings SET value = $2::jsonb WHERE key = $1", [key, json])
                    #expect(expected, "\(key) = \(json) was stored")
                } catch let error as PQError {
                    #expect(!expected && error.sqlState == .checkViolation, "\(key) = \(json): \(error)")
                }
            }
        }
    }

    /// The table's keys are the keys Settings reads, and the defaults the migrations store are
    /// Settings' own defaults: a key added on one side only, or a default changed on one, fails here.
    @Test func keysAndDefaultsAgree() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let rows = try await c.query("SELECT key, value::text FROM tov.settings ORDER BY key").map {
                (try $0.get(String.self, 0), try $0.get(String.self, 1))
            }
            #expect(Set(rows.map(\.0)) == Set(Settings.keys))
            #expect(try Settings(rows: rows) == Settings())
        }
    }

    /// heads must divide width after the defaults fill the missing field. Both ways: the database
    /// and the parser agree on every single-field shape (widths up to 1024 stay far below the
    /// parameter bound, which only the database checks), so their defaults are the same.
    @Test func surrogateDefaultsAreTheSameOnBothSides() async throws {
        let values = (16...1024).map { ("surrogate", "{\"width\": \($0)}") } + (1...64).map { ("surrogate", "{\"heads\": \($0)}") }
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            for ((key, json), verdict) in zip(values, try await Self.verdicts(values, on: c)) {
                var settings = Settings()
                #expect(verdict.valid == ((try? settings.set(key, json: json)) != nil), "\(json)")
            }
        }
    }

    /// Random JSON for every key: the database refuses it, or the daemon's parser turns it into a
    /// value it can use. The function never raises (that would fail the daemon's settings query),
    /// and a refused value is reported, not used. Seeded: a failure names its seed and value.
    @Test(arguments: [UInt64(16), 20_261_201])
    func fuzz(seed: UInt64) async throws {
        var generator = SettingValueGenerator(seed: seed)
        var values: [(key: String, json: String)] = []
        for key in Settings.keys + ["no_such_key"] {
            for _ in 0..<300 { values.append((key, generator.value(for: key))) }
        }
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let verdicts = try await Self.verdicts(values, on: c)
            var accepted: [String: Int] = [:], refused: [String: Int] = [:]
            for ((key, json), verdict) in zip(values, verdicts) {
                if verdict.valid {
                    accepted[key, default: 0] += 1
                    let failure = Self.unusable(key, verdict.stored)
                    #expect(failure == nil, "seed \(seed): \(key) = \(json) (stored \(verdict.stored)): \(failure ?? "")")
                } else {
                    refused[key, default: 0] += 1
                    // Never used: the key keeps its default and the problem names it.
                    let reading = SettingsCache.read([SettingRow(key: key, json: verdict.stored, valid: false)], lastGood: [:])
                    #expect(reading.settings == Settings())
                    if Settings.keys.contains(key) {
                        #expect(reading.problems.count == 1 && reading.problems[0].contains("tov.settings: \(key) = "))
                    }
                    // The parser may accept or refuse it, but never stops the process.
                    var settings = Settings()
                    _ = try? settings.set(key, json: verdict.stored)
                }
            }
            // Both sides of every key were exercised.
            for key in Settings.keys {
                #expect(accepted[key, default: 0] >= 10 && refused[key, default: 0] >= 10,
                        "\(key): \(accepted[key, default: 0]) accepted, \(refused[key, default: 0]) refused")
            }
            #expect(accepted["no_such_key"] == nil)

            // Through the table and a daemon's cache: every value the CHECK lets in is in force.
            let cache = SettingsCache(maxAge: .zero)
            for (i, ((key, json), verdict)) in zip(values, verdicts).enumerated() where i % 4 == 0 && verdict.valid && key != "no_such_key" {
                try await c.execute("UPDATE tov.settings SET value = $2::jsonb WHERE key = $1", [key, json])
                _ = try await cache.current(on: c)
                #expect(cache.problems.isEmpty, "seed \(seed): \(key) = \(json): \(cache.problems)")
            }
        }
    }

    /// A bypassed CHECK (or a schema not this build's) puts a bad value in the table: the daemon
    /// keeps the last good value per key, reports each problem, and picks up the fix.
    @Test func aBadStoredValueKeepsTheLastGoodOne() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let cache = SettingsCache(maxAge: .zero)
            try await c.execute("UPDATE tov.settings SET value = '3' WHERE key = 'epochs'")
            try await c.execute(#"UPDATE tov.settings SET value = '{"layers": 2, "width": 64, "heads": 2}' WHERE key = 'surrogate'"#)
            #expect(try await cache.current(on: c).epochs == 3)
            #expect(cache.settingsError == nil)
            let clean = cache.generation

            try await c.execute("ALTER TABLE tov.settings DROP CONSTRAINT settings_value_valid")
            try await c.execute("UPDATE tov.settings SET value = '40' WHERE key = 'epochs'")
            try await c.execute(#"UPDATE tov.settings SET value = '{"width": 33, "heads": 2}' WHERE key = 'surrogate'"#)
            try await c.execute(#"UPDATE tov.settings SET value = '"9223372036854775807"' WHERE key = 'seed'"#)
            let degraded = try await cache.current(on: c)
            #expect(degraded.epochs == 3)
            #expect(degraded.surrogate.layers == 2 && degraded.surrogate.width == 64)
            #expect(degraded.selection.seed == 0)
            #expect(cache.problems.count == 3)
            let error = try #require(cache.settingsError)
            #expect(error.contains("epochs = 40") && error.contains(#"surrogate = {"heads": 2, "width": 33}"#) && error.contains("seed = "))
            #expect(error.contains("keeps its last good value 3"))
            #expect(cache.generation > clean)

            // The same bad rows again: nothing new to report.
            let reported = cache.generation
            _ = try await cache.current(on: c)
            #expect(cache.generation == reported)
            // One-off readers (tovd explain) get the defaults for the bad keys, and no error.
            #expect(try await SettingsCache.load(on: c).epochs == Settings().epochs)

            try await c.execute("UPDATE tov.settings SET value = '5' WHERE key = 'epochs'")
            try await c.execute("UPDATE tov.settings SET value = '7' WHERE key = 'seed'")
            let fixed = try await cache.current(on: c)
            #expect(fixed.epochs == 5 && fixed.selection.seed == 7)
            #expect(cache.problems.count == 1 && cache.problems[0].contains("surrogate"))
            #expect(cache.generation > reported)
        }
    }

    /// A real `tovd run` over values it cannot use (a bypassed CHECK): a seed past 2^63 − 2 (it
    /// trapped every instance at start) and 1e15 budget rows (refused on every tick, so the
    /// selection was never written). The daemon bootstraps, scores and selects on the defaults of
    /// those keys, reports each once, and picks up the fix without a restart.
    @Test func aRunningDaemonSurvivesValuesItCannotUse() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 16, budgetRows: 10, bins: 2))
            try await c.execute("ALTER TABLE tov.settings DROP CONSTRAINT settings_value_valid")
            try await c.execute("UPDATE tov.settings SET value = '9223372036854775807' WHERE key = 'seed'")
            try await c.execute(#"UPDATE tov.settings SET value = '{"rows": 1e15}' WHERE key = 'budget'"#)
            try await TovTestDatabase.insertCandidates(80, on: c, prefix: "the cat sat on the mat")
            try await c.execute("INSERT INTO tov.validation (prompt, response) SELECT 'the cat sat', 'on the mat ' || g FROM generate_series(1, 5) g")
            let daemon = try TovdProcess(["run", "--metrics-port", "0", "--poll-interval", "0.2", "--batch-size", "16"], conninfo: conninfo)
            defer { daemon.terminate() }

            // The default budget, 5 % of the 64 rows outside U.
            let selected = try await TovTestDatabase.eventually(timeout: .seconds(240)) {
                try await TovTestDatabase.count("tov.selected", on: c) == 3
            }
            #expect(selected, "\(daemon.log.suffix(3000))")
            #expect(daemon.isRunning)
            func reports() -> Int { daemon.log.components(separatedBy: "tov.settings: seed = 9223372036854775807 cannot be used").count - 1 }
            #expect(reports() >= 1, "\(daemon.log.suffix(3000))")
            // Where people look: tov.status.settings_error and the tovd_settings_error gauge.
            func statusError() async throws -> String? {
                let row = try await c.query("SELECT settings_error FROM tov.status").first!
                return row.isNull(0) ? nil : try row.get(String.self, 0)
            }
            let shown = try await TovTestDatabase.eventually(timeout: .seconds(30)) {
                try await statusError()?.contains("seed = 9223372036854775807") == true
            }
            let status = try await statusError() ?? "no settings_error"
            #expect(shown, "\(status)")
            #expect(await daemon.metric("tovd_settings_error") == 1)

            // Fixed while running: the new budget is in force, and the problem was not logged per batch.
            try await c.execute(#"UPDATE tov.settings SET value = '{"rows": 10}' WHERE key = 'budget'"#)
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(30)) {
                try await TovTestDatabase.count("tov.selected", on: c) == 10
            }, "\(daemon.log.suffix(3000))")
            #expect(daemon.isRunning)
            #expect((1...2).contains(reports()), "one report per settings cache, not one per batch or tick")
            try await c.execute("UPDATE tov.settings SET value = '7' WHERE key = 'seed'")
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(30)) { try await statusError() == nil })
        }
    }

    /// A value 001 accepted and 005 refuses stops the migration with the key, the value and what
    /// to do; nothing is changed behind the operator's back. After the fix, up and down both work.
    @Test func migrationRefusesStoredValuesTheNewRuleRefuses() async throws {
        try await TestDatabase.withFreshDatabase { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            let migrator = Migrator()
            try await migrator.up(on: c, to: 4)
            try await c.execute(#"UPDATE tov.settings SET value = '{"width": 33, "heads": 2}' WHERE key = 'surrogate'"#)
            try await c.execute(#"UPDATE tov.settings SET value = '{"rows": 1e15}' WHERE key = 'budget'"#)
            do {
                try await migrator.up(on: c)
                Issue.record("migration 005 applied over values it refuses")
            } catch {
                let message = "\(error)"
                #expect(message.contains(#"surrogate = {"heads": 2, "width": 33}"#), "\(message)")
                #expect(message.contains(#"budget = {"rows": 1000000000000000}"#), "\(message)")
                #expect(message.contains("DELETE the row"), "\(message)")
            }
            #expect(try await migrator.currentVersion(on: c) == 4)
            let kept = try await c.query("SELECT value::text FROM tov.settings WHERE key = 'surrogate'")
            #expect(try kept.first!.get(String.self, 0) == #"{"heads": 2, "width": 33}"#)

            try await c.execute(#"UPDATE tov.settings SET value = '{"width": 32, "heads": 2}' WHERE key = 'surrogate'"#)
            try await c.execute("DELETE FROM tov.settings WHERE key = 'budget'")
            try await migrator.up(on: c)
            let growth = try await c.query("SELECT value::text FROM tov.settings WHERE key = 'rebase_growth'")
            #expect(try growth.first?.get(String.self, 0) == "4")
            await #expect(throws: PQError.self) { try await c.execute("UPDATE tov.settings SET value = '2.0' WHERE key = 'epochs'") }

            // Down restores 001's rule (which took 2.0 for epochs) and removes rebase_growth.
            try await migrator.down(on: c, steps: migrator.latestVersion - 4)
            #expect(try await TovTestDatabase.count("tov.settings", on: c, where: "key = 'rebase_growth'") == 0)
            try await c.execute("UPDATE tov.settings SET value = '2.0' WHERE key = 'epochs'")
            try await c.execute("UPDATE tov.settings SET value = '2' WHERE key = 'epochs'")
            try await migrator.up(on: c)
            try await migrator.validate(on: c)
        }
    }
}

/// Random JSON text for a setting: mostly near its domain, so that both verdicts are common.
struct SettingValueGenerator {
    var random: SplitMix64

    init(seed: UInt64) { random = SplitMix64(seed: seed) }

    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &random) < p }
    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &random)] }

    /// Edge values of the integer keys and the places numbers break: 2^53, 2^63, Int32.max.
    static let edges = [
        "0", "1", "-1", "2", "3", "4", "16", "15", "100", "101", "260", "259", "4096", "4097", "8192", "65536", "65537",
        "1000000", "1000001", "10000000", "10000001", "1073741824", "1073741825", "2147483647", "2147483648",
        "9007199254740993", "9223372036854775806", "9223372036854775807", "9223372036854775808",
        "-9223372036854775806", "-9223372036854775807", "-9223372036854775808", "99999999999999999999999",
    ]
    static let reals = [
        "0.5", "2.5", "4.0", "2.0", "-0", "0.0", "0.0003", "1e-3", "1e15", "1e-400", "1e400", "0.000000001", "0.0000000009",
        "0.000001", "0.0000009", "1.1", "1.09", "1.0000000000000000001", "0.99999999999999999999", "10", "10.5", "86400",
        "86400.1", "1000000", "1000000.5", "-2.5", "3.14159", "1E2",
    ]
    static let strings = [
        "\"\"", "\"4\"", "\"2.5\"", "\"score_random\"", "\"score_only\"", "\"score_only_unbinned\"", "\"random\"",
        "\"uncertainty\"", "\"Score_Random\"", "\"improvement\"", "\"abs\"", "\"relu\"", "\"A\"", "\"B\"", "\"a\"",
        "\"C\"", "\"null\"", "\"\\u00e9\\u4e16\"", "\"a\\nb\"", "\"abs \"",
    ]

    mutating func integer(in range: ClosedRange<Int>) -> String { String(Int.random(in: range, using: &random)) }

    mutating func number() -> String {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: pick(Self.edges)
        case 1: pick(Self.reals)
        case 2: integer(in: -20...300)
        default: String(format: "%.6g", Double.random(in: -1...12, using: &random) * pow(10, Double(Int.random(in: -12...12, using: &random))))
        }
    }

    mutating func scalar() -> String {
        switch Int.random(in: 0..<10, using: &random) {
        case 0..<5: number()
        case 5..<8: pick(Self.strings)
        case 8: pick(["true", "false"])
        default: "null"
        }
    }

    mutating func any(depth: Int = 0) -> String {
        if depth > 1 || chance(0.7) { return scalar() }
        if chance(0.5) { return "[" + (0..<Int.random(in: 0...3, using: &random)).map { _ in any(depth: depth + 1) }.joined(separator: ", ") + "]" }
        return object(fields: ["x", "rows", "layers"], value: { $0.any(depth: depth + 1) })
    }

    mutating func object(fields: [String], value: (inout SettingValueGenerator) -> String) -> String {
        var members: [String] = []
        for field in fields where chance(0.5) { members.append("\"\(field)\": \(value(&self))") }
        return "{" + members.joined(separator: ", ") + "}"
    }

    /// A plausible surrogate field: often a valid size, a divisor-friendly width or head count.
    mutating func surrogateField() -> String {
        chance(0.85) ? pick(["1", "2", "3", "4", "6", "8", "16", "24", "32", "33", "48", "64", "128", "256", "260", "300", "512", "1024", "2048", "4096"]) : scalar()
    }

    mutating func value(for key: String) -> String {
        if chance(0.15) { return any() }
        switch key {
        case "budget":
            if chance(0.2) { return object(fields: ["fraction", "rows", "note"], value: { $0.scalar() }) }
            if chance(0.5) { return "{\"fraction\": \(chance(0.7) ? String(Double.random(in: -0.1...1.1, using: &random)) : number())}" }
            return "{\"rows\": \(chance(0.6) ? integer(in: -5...100_000) : number())}"
        case "surrogate":
            var fields = ["layers", "width", "heads", "context", "vocab"]
            if chance(0.1) { fields.append(pick(["layer", "dropout", "Width"])) }
            return object(fields: fields, value: { $0.surrogateField() })
        // Half the time one of Swift's own cases, which the database must accept and parse back.
        case "policy": return chance(0.5) ? "\"\(pick(Policy.allCases).rawValue)\"" : pick(Self.strings)
        case "score_fn": return chance(0.5) ? "\"\(pick(ScoreFunction.allCases).rawValue)\"" : pick(Self.strings)
        case "method": return chance(0.5) ? "\"\(pick(TrajectoryMethod.allCases).rawValue)\"" : pick(Self.strings)
        case "lr", "val_lr_ratio", "zval_debounce_seconds", "rebase_growth", "score_share":
            return chance(0.6) ? String(Double.random(in: pick([-0.1...1.1, -1.0...12.0, 0.0...100_000.0]), using: &random)) : number()
        default: return chance(0.5) ? integer(in: pick([-3...20, 0...200, 0...2_000_000])) : number()
        }
    }
}
