import Daemon
import Selection
import Testing

@Suite("Settings parsing and the last good value")
struct SettingsTests {
    func parsed(_ key: String, _ json: String) throws -> Settings {
        var settings = Settings()
        try settings.set(key, json: json)
        return settings
    }

    /// Through Double, 2^63 − 2 rounds to 2^63 and Int64(_:) traps: every instance crashed.
    @Test func seedsNear64BitsAreExact() throws {
        #expect(try parsed("seed", "9223372036854775806").selection.seed == 9_223_372_036_854_775_806)
        #expect(try parsed("seed", "-9223372036854775806").selection.seed == -9_223_372_036_854_775_806)
        #expect(try parsed("seed", "9007199254740993").selection.seed == 9_007_199_254_740_993)  // 2^53 + 1
        #expect(throws: DaemonError.self) { try parsed("seed", "9223372036854775808") }
        #expect(throws: DaemonError.self) { try parsed("seed", "1.5") }
    }

    @Test func integersAreWrittenAsIntegers() throws {
        #expect(try parsed("epochs", "3").epochs == 3)
        #expect(try parsed("max_text_bytes", "1073741824").maxTextBytes == 1 << 30)
        for bad in ["2.0", "2.5", "\"2\"", "true", "null", "[2]"] {
            #expect(throws: DaemonError.self, "\(bad)") { try parsed("epochs", bad) }
        }
    }

    @Test func numbersAndStrings() throws {
        #expect(try parsed("lr", "0.00030000000000000000001").learningRate == 3e-4)
        #expect(try parsed("rebase_growth", "0").rebaseGrowth == 0)
        #expect(try parsed("rebase_growth", "1.5").rebaseGrowth == 1.5)
        #expect(try parsed("zval_debounce_seconds", "0.25").zvalDebounceSeconds == 0.25)
        #expect(try parsed("policy", "\"score_only\"").selection.policy == .scoreOnly)
        for (key, bad) in [("lr", "\"0.1\""), ("lr", "nan"), ("lr", "1" + String(repeating: "0", count: 400)),
                           ("policy", "\"best\""), ("policy", "3"), ("method", "\"C\"")] {
            #expect(throws: DaemonError.self, "\(key) = \(bad)") { try parsed(key, bad) }
        }
    }

    /// width 33 with 2 heads reached a precondition in ModelConfig at every start; "4" and 2.5
    /// failed to decode on every tick. Now each is a thrown error naming the key.
    @Test func surrogateShapes() throws {
        let partial = try parsed("surrogate", #"{"layers": 2, "heads": 8}"#).surrogate
        #expect([partial.layers, partial.width, partial.heads, partial.context, partial.vocab] == [2, 256, 8, 256, 4096])
        for bad in [#"{"width": 33, "heads": 2}"#, #"{"heads": 3}"#, #"{"layers": 2.5}"#, #"{"layers": "4"}"#,
                    #"{"layer": 4}"#, #"{"heads": 0}"#, #"{"vocab": true}"#, "[]", "4"] {
            #expect(throws: DaemonError.self, "\(bad)") { try parsed("surrogate", bad) }
        }
        do {
            _ = try parsed("surrogate", #"{"width": 33, "heads": 2}"#)
        } catch {
            #expect("\(error)".contains("surrogate") && "\(error)".contains("must divide width"))
        }
    }

    @Test func unknownKeysAreIgnored() throws {
        var settings = Settings()
        #expect(try settings.set("from_a_newer_schema", json: "{}") == false)
        #expect(settings == Settings())
    }

    // MARK: - SettingsCache.read

    func row(_ key: String, _ json: String, valid: Bool = true) -> SettingRow { SettingRow(key: key, json: json, valid: valid) }

    @Test func aRefusedValueKeepsTheLastGoodOne() {
        let good = SettingsCache.read([row("epochs", "3"), row("bins", "7")], lastGood: [:])
        #expect(good.problems.isEmpty)
        #expect(good.settings.epochs == 3 && good.lastGood == ["epochs": "3", "bins": "7"])

        // The database refuses it (CHECK bypassed): not even parsed, though Swift could parse it.
        let refused = SettingsCache.read([row("epochs", "40", valid: false), row("bins", "7")], lastGood: good.lastGood)
        #expect(refused.settings.epochs == 3)
        #expect(refused.settings.selection.bins == 7)
        #expect(refused.lastGood["epochs"] == "3")
        #expect(refused.problems.count == 1)
        #expect(refused.problems.first?.contains("epochs = 40") == true)
        #expect(refused.problems.first?.contains("last good value 3") == true)

        // Accepted by the database but not parseable by this build: same outcome.
        let unparsed = SettingsCache.read([row("surrogate", #"{"width": 33, "heads": 2}"#)],
                                          lastGood: ["surrogate": #"{"layers": 2}"#])
        #expect(unparsed.settings.surrogate.layers == 2)
        #expect(unparsed.problems.count == 1 && unparsed.problems[0].contains("must divide width"))

        // Fixed: the new value is in force and the problem is gone.
        let fixed = SettingsCache.read([row("epochs", "4")], lastGood: refused.lastGood)
        #expect(fixed.settings.epochs == 4 && fixed.problems.isEmpty)
    }

    @Test func withoutAGoodValueTheDefaultIsKept() {
        let reading = SettingsCache.read([row("seed", "\"x\"", valid: false), row("budget", #"{"rows": 1e15}"#)], lastGood: [:])
        #expect(reading.settings == Settings())
        #expect(reading.problems.count == 2)
        #expect(reading.problems.allSatisfy { $0.contains("keeps its default") })
        #expect(reading.lastGood.isEmpty)
    }

    /// A deleted row means the default, not the value it had before.
    @Test func aMissingKeyIsAtItsDefault() {
        let reading = SettingsCache.read([], lastGood: ["epochs": "3"])
        #expect(reading.settings.epochs == Settings().epochs)
        #expect(reading.problems.isEmpty && reading.lastGood.isEmpty)
    }
}
