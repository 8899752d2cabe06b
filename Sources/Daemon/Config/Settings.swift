import Foundation
import Selection

/// The contents of `tov.settings`, parsed.
///
/// Which values are valid is defined once, by `tov.setting_is_valid` in the database (migration
/// 005): ``SettingsCache`` asks it for every row and never hands a value it refuses to this parser.
/// The parser's job is to turn each accepted value into exactly the number or shape it says:
/// integers from their text (jsonb prints numbers in plain decimal, so `9223372036854775806`
/// stays that number; through `Double` it would trap), and never a value the daemon would crash
/// on. A key missing from the table gets its documented default.
public struct Settings: Equatable, Sendable {
    public var selection = SelectionSettings()
    /// |U|, the size of the random base subset.
    public var uSize = 4096
    /// L, the number of scoring epochs.
    public var epochs = 2
    /// η, the learning rate of the base trajectory on U.
    public var learningRate = 3e-4
    /// ε / η: the pass on Z_val runs at this fraction of η.
    public var valLearningRateRatio = 0.1
    /// Steps of next-token pretraining of θ0 on U when no θ0 was imported.
    public var pretrainSteps = 200
    /// The imported θ0 (`tovd base import`, table tov.theta0s) the next base model starts from; nil:
    /// the daemon's bootstrap, pretrained on U. Whether a θ0 of that name is stored and fits
    /// `surrogate` is the trainer's to check (``TrainerPolicy/theta0Problem(_:)``).
    public var theta0: String?
    public var surrogate = SurrogateShape()
    public var zvalDebounceSeconds = 5.0
    public var maxAttempts = 3
    public var maxTextBytes = 1 << 20
    /// Pool growth since U was drawn (ready rows now ÷ then) that makes the trainer rebase; 0 = off.
    public var rebaseGrowth = 4.0
    /// The targets (`tov.targets`), each with these settings and its own values applied, in id
    /// order. Empty inside a target's own ``TargetSettings/settings``.
    public var targets: [TargetSettings] = []

    /// The surrogate's shape. Defaults equal those `tov.setting_is_valid` applies to missing fields.
    public struct SurrogateShape: Equatable, Sendable, Codable {
        public var layers = 4
        public var width = 256
        public var heads = 4
        public var context = 256
        public var vocab = 4096
    }

    /// Every key this build reads, in the order of `tov.settings`' defaults.
    public static let keys = [
        "budget", "policy", "score_fn", "method", "bins", "seed", "u_size", "epochs", "lr", "val_lr_ratio",
        "pretrain_steps", "surrogate", "zval_debounce_seconds", "max_attempts", "max_text_bytes", "rebase_growth", "theta0",
        "score_share",
    ]

    public init() {}

    /// Parses `(key, value-as-jsonb-text)` rows; throws on the first value it cannot use.
    public init(rows: [(String, String)]) throws {
        self.init()
        for (key, text) in rows { try set(key, json: text) }
    }

    /// Sets `key` from the text PostgreSQL prints for its jsonb value (`value::text`).
    ///
    /// - Returns: false for a key this build does not know (a newer schema's), which is ignored
    ///   rather than refused, so an older binary keeps running.
    /// - Throws: ``DaemonError`` with code `.config` that names the key and the value.
    @discardableResult
    public mutating func set(_ key: String, json text: String) throws -> Bool {
        func fail(_ what: String) -> DaemonError {
            DaemonError(.config, "tov.settings: \(key) = \(Self.excerpt(text)) cannot be used: \(what)")
        }
        /// Exact: jsonb prints an integer as its digits, and "2.0" or "1e3" are not integers here
        /// (the database's rule refuses them too).
        func integer() throws -> Int {
            guard let n = Int(text) else { throw fail("it must be a whole number written without a fraction or exponent") }
            return n
        }
        func number() throws -> Double {
            guard let x = Double(text), x.isFinite, text.first.map({ $0 == "-" || $0.isNumber }) == true else {
                throw fail("it must be a finite JSON number")
            }
            return x
        }
        func string() throws -> String {
            guard let s = try? JSONDecoder().decode(String.self, from: Data(text.utf8)) else {
                throw fail("it must be a JSON string")
            }
            return s
        }
        func oneOf<T: RawRepresentable & CaseIterable>(_: T.Type) throws -> T where T.RawValue == String {
            guard let value = T(rawValue: try string()) else {
                throw fail("it must be one of \(T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
            }
            return value
        }

        switch key {
        case "budget":
            do { selection.budget = try Budget(json: text) } catch let error as SelectionError { throw fail(error.description) }
        case "policy": selection.policy = try oneOf(Policy.self)
        case "score_fn": selection.scoreFunction = try oneOf(ScoreFunction.self)
        case "method": selection.method = try oneOf(TrajectoryMethod.self)
        case "bins": selection.bins = try integer()
        case "seed":
            guard let seed = Int64(text) else { throw fail("it must be a whole number within 64 bits") }
            selection.seed = seed
        case "u_size": uSize = try integer()
        case "epochs": epochs = try integer()
        case "lr": learningRate = try number()
        case "val_lr_ratio": valLearningRateRatio = try number()
        case "pretrain_steps": pretrainSteps = try integer()
        case "surrogate": surrogate = try SurrogateShape(json: text, failure: fail)
        case "zval_debounce_seconds": zvalDebounceSeconds = try number()
        case "max_attempts": maxAttempts = try integer()
        case "max_text_bytes": maxTextBytes = try integer()
        case "rebase_growth": rebaseGrowth = try number()
        case "theta0": theta0 = text == "null" ? nil : try string()
        case "score_share":
            let share = try number()
            guard share >= 0 && share <= 1 else { throw fail("it must be a number from 0 to 1") }
            selection.scoreShare = share
        default: return false
        }
        return true
    }

    /// A value as it appears in messages: settings hold no secrets, but a value may be megabytes.
    static func excerpt(_ text: String) -> String {
        text.count <= 120 ? text : String(text.prefix(120)) + "…"
    }
}

extension Settings.SurrogateShape {
    /// "4×256 (4 heads, context 256, vocab 4096)", for messages.
    var summary: String { "\(layers)×\(width) (\(heads) heads, context \(context), vocab \(vocab))" }

    /// The value of the `surrogate` setting that asks for exactly this shape.
    var json: String { "{\"layers\": \(layers), \"width\": \(width), \"heads\": \(heads), \"context\": \(context), \"vocab\": \(vocab)}" }

    static let fields: Set<String> = ["layers", "width", "heads", "context", "vocab"]

    /// `surrogate` may name only some fields; the rest keep their defaults. The result always
    /// satisfies `ModelConfig`'s preconditions (which stop the process), whatever the input.
    init(json text: String, failure: (String) -> DaemonError) throws {
        // [String: Int] decodes each field strictly: "4", 2.5 and true are refused, not rounded.
        let fields: [String: Int]
        do {
            fields = try JSONDecoder().decode([String: Int].self, from: Data(text.utf8))
        } catch {
            throw failure("it must be a JSON object of whole numbers, e.g. {\"layers\": 4, \"width\": 256, \"heads\": 4, \"context\": 256, \"vocab\": 4096}")
        }
        if let unknown = fields.keys.sorted().first(where: { !Self.fields.contains($0) }) {
            throw failure("unknown field \"\(unknown)\"; the fields are layers, width, heads, context and vocab")
        }
        self.init()
        if let layers = fields["layers"] { self.layers = layers }
        if let width = fields["width"] { self.width = width }
        if let heads = fields["heads"] { self.heads = heads }
        if let context = fields["context"] { self.context = context }
        if let vocab = fields["vocab"] { self.vocab = vocab }
        guard layers >= 1, width >= 1, heads >= 1, context >= 2, vocab >= 259 else {
            throw failure("layers, width and heads must be ≥ 1, context ≥ 2 and vocab ≥ 259")
        }
        guard width % heads == 0 else {
            throw failure("heads (\(heads)) must divide width (\(width)), counting defaults for missing fields")
        }
    }
}
