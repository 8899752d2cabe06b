import ArgumentParser
import Daemon
import Foundation
import PQ

extension Tovd {
    struct Target: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add, list, enable, disable and drop targets: several validation sets (and selections) on one pool.",
            discussion: """
                A target is a name, its Z_val (tov.validation rows with that `target`) and its own selection \
                (tov.selections WHERE target = NAME), all on the one shared base model: each target adds L \
                forward passes per row, not a second base model. A database of one target has the target \
                `default`, which tov.selected and tov.status describe. Each command is one SQL statement on \
                tov.targets (docs/operations.md, "Several targets"); this is a convenience.
                  tovd target add drop --budget '{"rows": 5000}' --policy score_only
                  tovd import drop-zval.jsonl --into validation --target drop
                  tovd target list
                  tovd target set drop --bins 20 --unset policy
                  tovd export --target drop --selected -o drop.jsonl --manifest drop.manifest.json
                  tovd target disable drop          # keeps its selection, trains nothing
                  tovd target drop drop --yes       # deletes its Z_val, versions, scores and selection
                """,
            subcommands: [Add.self, SetSettings.self, List.self, Enable.self, Disable.self, Drop.self])

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add a target; it waits for its Z_val, then trains its θ_val on the current base model.",
                discussion: """
                    A target sets only what is per target by nature: budget, policy, bins, score_fn, \
                    score_share, val_lr_ratio, zval_debounce_seconds. What it does not set, and everything that shapes the \
                    base model (surrogate, u_size, epochs, lr, pretrain_steps, seed, theta0, method, \
                    rebase_growth), is the global value of tov.settings. Values and ranges are those of \
                    tov.settings (docs/operations.md).
                      tovd target add drop
                      tovd target add drop --budget '{"rows": 5000}' --policy score_only --bins 20
                      tovd target add chat --budget '{"fraction": 0.02}' --disabled
                    The same in SQL: INSERT INTO tov.targets (name, settings) VALUES ('drop', '{"budget": {"rows": 5000}}');
                    """)

            @Argument(help: "The target's name: a letter or digit, then up to 62 letters, digits, '.', '_' or '-'.") var name: String
            @OptionGroup var settings: TargetSettingOptions
            @Flag(help: "Add it disabled: it trains nothing until `tovd target enable NAME`.") var disabled = false
            @OptionGroup var database: DatabaseOptions

            func run() async throws {
                let connection = try await database.connect(applicationName: "tovd target add")
                defer { connection.close() }
                guard try await TargetStore.targetNameIsValid(name, on: connection) else {
                    throw CLIError("\"\(name)\" is not a valid target name: it must start with a letter or digit, then up to 62 letters, "
                        + "digits, '.', '_' or '-' (so it reads the same in SQL, a flag and a file name)")
                }
                let settingsJSON = try await settings.checkedJSON(on: connection)
                guard try await TargetStore.targetInsert(.init(name: name, settingsJSON: settingsJSON, enabled: !disabled), on: connection) != nil
                else {
                    throw CLIError("a target named \(name) exists already (tovd target list); change its settings with "
                        + "`tovd target set \(name) ...`")
                }
                print("added target \(name)" + (settings.pairs.isEmpty ? " (every setting global)" : " with \(settingsJSON)")
                    + (disabled ? ", disabled" : ""))
                print("next: load its Z_val with `tovd import FILE --into validation --target \(name)`; its selection is "
                    + "SELECT * FROM tov.selections WHERE target = '\(name)' (or `tovd export --target \(name) --selected`)")
            }
        }

        struct SetSettings: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "set",
                abstract: "Change a target's own settings, or give some back to the global value.",
                discussion: """
                    Takes the flags of `tovd target add`; --unset KEY makes the target read KEY from tov.settings \
                    again. Like a change in tov.settings, budget, policy, bins, score_fn and score_share take effect at once, \
                    val_lr_ratio by a refresh of this target.
                      tovd target set drop --bins 20 --policy score_random
                      tovd target set drop --unset budget --unset bins
                    The same in SQL: UPDATE tov.targets SET settings = (settings - 'budget') || '{"bins": 20}' WHERE name = 'drop';
                    """)

            @Argument(help: "The target's name.") var name: String
            @OptionGroup var settings: TargetSettingOptions
            @Option(help: ArgumentHelp("A key to take from tov.settings again (repeatable).", valueName: "key")) var unset: [String] = []
            @OptionGroup var database: DatabaseOptions

            func validate() throws {
                guard !settings.pairs.isEmpty || !unset.isEmpty else { throw ValidationError("say what to change: a setting flag or --unset KEY") }
                if let key = unset.first(where: { !Settings.targetKeys.contains($0) }) {
                    let scope = Settings.keys.contains(key) ? "\(key) is global (tov.settings): it shapes the base model or the whole pool, so every target shares it"
                        : "\(key) is not a setting"
                    throw ValidationError("\(scope); a target may set only \(Settings.targetKeys.sorted().joined(separator: ", "))")
                }
            }

            func run() async throws {
                let connection = try await database.connect(applicationName: "tovd target set")
                defer { connection.close() }
                let json = try await settings.checkedJSON(on: connection)
                guard let now = try await TargetStore.targetSettingsUpdate(name: name, unset: unset, set: json, on: connection) else {
                    throw try await unknownTarget(name, on: connection)
                }
                print("target \(name) now sets \(now == "{}" ? "nothing (every setting global)" : now)")
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Every target: enabled, its own settings, Z_val, model version, selection and freshness.",
                discussion: """
                    Reads tov.target_status (a login with tov_reader may run it).
                      tovd target list
                      tovd target list --json
                    """)
            @Flag(help: "Print a JSON array (the `targets` of `tovd status --json`).") var json = false
            @OptionGroup var database: DatabaseOptions

            func run() async throws {
                let connection = try await database.connect(applicationName: "tovd target list")
                defer { connection.close() }
                let targets = try await StatusQueries.targetStatusGetMany(on: connection)
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys]
                    print(String(decoding: try encoder.encode(targets), as: UTF8.self))
                    return
                }
                let width = targets.map(\.name.count).max() ?? 0
                for t in targets {
                    let own = t.settings.isEmpty ? "settings: all global"
                        : "own settings: " + t.settings.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: ", ")
                    print(t.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + t.summary)
                    print(String(repeating: " ", count: width) + "  " + own)
                }
            }
        }

        struct Enable: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Enable a target: it trains again (a refresh follows if its Z_val changed meanwhile).",
                discussion: "  tovd target enable drop      # UPDATE tov.targets SET enabled = true WHERE name = 'drop'")
            @Argument(help: "The target's name.") var name: String
            @OptionGroup var database: DatabaseOptions
            func run() async throws { try await setEnabled(name, true, database: database) }
        }

        struct Disable: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Disable a target: it trains nothing new; its selection stays readable as it is.",
                discussion: "  tovd target disable drop     # UPDATE tov.targets SET enabled = false WHERE name = 'drop'")
            @Argument(help: "The target's name.") var name: String
            @OptionGroup var database: DatabaseOptions
            func run() async throws { try await setEnabled(name, false, database: database) }
        }

        struct Drop: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Drop a target with its Z_val, model versions, scores and selection (its history stays).",
                discussion: """
                    Says what it would delete and, when the target has any of it, does nothing without --yes. \
                    tov.selection_history keeps the target's rows, so an export manifest of it can still be \
                    reproduced (tovd export --as-of). The target `default` is not dropped: tov.selected, \
                    tov.status and Z_val rows inserted without a target are its; disable it instead.
                      tovd target drop drop           # shows what it deletes
                      tovd target drop drop --yes     # DELETE FROM tov.targets WHERE name = 'drop'
                    """)
            @Argument(help: "The target's name.") var name: String
            @Flag(help: "Delete even though the target has data.") var yes = false
            @OptionGroup var database: DatabaseOptions

            func run() async throws {
                let connection = try await database.connect(applicationName: "tovd target drop")
                defer { connection.close() }
                guard name != Settings.defaultTarget else {
                    throw CLIError("the target default is not dropped: tov.selected, tov.status and Z_val rows inserted without a "
                        + "target are its; `tovd target disable default` stops its training and keeps its selection")
                }
                guard let data = try await TargetStore.targetDataGet(name: name, on: connection) else {
                    throw try await unknownTarget(name, on: connection)
                }
                let what = "\(data.zvalRows) Z_val rows, \(data.modelVersions) model versions (with their checkpoints), "
                    + "\(data.scores) scores and the \(data.selectionRows) rows of its selection"
                if !data.isEmpty && !yes {
                    throw CLIError("dropping target \(name) deletes \(what); its \(data.historyRows) history rows stay. "
                        + "Run `tovd target drop \(name) --yes` to delete it, or `tovd target disable \(name)` to keep it and train nothing")
                }
                guard try await TargetStore.targetDelete(name: name, on: connection) else { throw try await unknownTarget(name, on: connection) }
                print("dropped target \(name): deleted \(what); its \(data.historyRows) history rows stay in tov.selection_history "
                    + "(target_id \(data.targetID))")
            }
        }
    }
}

/// The settings a target may set for itself, as flags (`tovd target add` and `set`).
struct TargetSettingOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Its budget, as tov.settings writes it: '{\"rows\": N}' or '{\"fraction\": F}'.", valueName: "json"))
    var budget: String?
    @Option(help: "Its policy: score_random, score_dsir (the rest of the budget by n-gram importance instead of at random), score_only, score_only_unbinned, random or uncertainty.") var policy: String?
    @Option(help: "Its number of length bins (1 … 100).") var bins: Int?
    @Option(help: "Its score function: improvement, abs or relu.") var scoreFn: String?
    @Option(help: "Its θ_val learning rate as a fraction of lr (1e-6 … 10).") var valLrRatio: Double?
    @Option(help: "Seconds its Z_val must be quiet before a refresh (0 … 86400).") var zvalDebounceSeconds: Double?
    @Option(help: "Its share of the budget taken by score under score_dsir or score_random, the rest by importance or at random (0 … 1; ToV's is 0.5).") var scoreShare: Double?

    /// (key, JSON text) of each setting given, in the order of `tov.target_setting_keys()`.
    var pairs: [(String, String)] {
        func quoted(_ s: String) -> String { String(decoding: try! JSONEncoder().encode(s), as: UTF8.self) }
        var pairs: [(String, String)] = []
        if let budget { pairs.append(("budget", budget)) }
        if let policy { pairs.append(("policy", quoted(policy))) }
        if let bins { pairs.append(("bins", String(bins))) }
        if let scoreFn { pairs.append(("score_fn", quoted(scoreFn))) }
        if let valLrRatio { pairs.append(("val_lr_ratio", String(valLrRatio))) }
        if let zvalDebounceSeconds { pairs.append(("zval_debounce_seconds", String(zvalDebounceSeconds))) }
        if let scoreShare { pairs.append(("score_share", String(scoreShare))) }
        return pairs
    }

    /// The given settings as one JSON object, each value checked by the database's own rule first
    /// (the table's CHECK would refuse it too, but without naming the flag).
    func checkedJSON(on connection: Connection) async throws -> String {
        var object: [String] = []
        for (key, json) in pairs {
            let valid = try? await TargetStore.settingIsValid(key: key, json: json, on: connection)
            guard valid == true else {
                throw CLIError("--\(key.replacingOccurrences(of: "_", with: "-")) \(json) is not a value tov.settings accepts for \(key); "
                    + "see the table of keys in docs/operations.md (\"Refresh and rebase\") for its type and range")
            }
            object.append("\(String(decoding: try JSONEncoder().encode(key), as: UTF8.self)): \(json)")
        }
        return "{" + object.joined(separator: ", ") + "}"
    }
}

private func setEnabled(_ name: String, _ enabled: Bool, database: DatabaseOptions) async throws {
    let connection = try await database.connect(applicationName: "tovd target")
    defer { connection.close() }
    guard try await TargetStore.targetEnabledUpdate(name: name, enabled: enabled, on: connection) else {
        throw try await unknownTarget(name, on: connection)
    }
    print(enabled ? "enabled target \(name): it trains again" : "disabled target \(name): it trains nothing new, its selection stays readable")
}

/// "no target named X; the targets are: a, b (tovd target list)".
func unknownTarget(_ name: String, on connection: Connection) async throws -> CLIError {
    let names = try await TargetStore.targetNameGetMany(on: connection)
    return CLIError("no target named \(name); the targets are: \(names.joined(separator: ", ")) (tovd target list; add one with tovd target add NAME)")
}

/// The id of the target `name`, or an error that lists the targets.
func requireTarget(_ name: String, on connection: Connection) async throws -> Int {
    guard let id = try await TargetStore.targetIDGet(name: name, on: connection) else { throw try await unknownTarget(name, on: connection) }
    return id
}
