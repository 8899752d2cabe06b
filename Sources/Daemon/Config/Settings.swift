import Foundation
import Selection

/// The contents of `tov.settings`, parsed. Values were checked by the table's CHECK constraint;
/// parsing still falls back to the documented default for anything missing, so an operator who
/// deletes a key gets the default rather than a crash.
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
    public var surrogate = SurrogateShape()
    public var zvalDebounceSeconds = 5.0
    public var maxAttempts = 3
    public var maxTextBytes = 1 << 20
    /// Pool growth since U was drawn (ready rows now ÷ then) that makes the trainer rebase; 0 = off.
    public var rebaseGrowth = 4.0

    public struct SurrogateShape: Equatable, Sendable, Codable {
        public var layers = 4
        public var width = 256
        public var heads = 4
        public var context = 256
        public var vocab = 4096
    }

    public init() {}

    /// Parses `(key, value-as-JSON-text)` rows.
    public init(rows: [(String, String)]) throws {
        self.init()
        for (key, text) in rows {
            guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) else {
                throw DaemonError(.config, "tov.settings: value of \(key) is not JSON")
            }
            func number() throws -> Double {
                guard let n = value as? NSNumber else { throw DaemonError(.config, "tov.settings: \(key) must be a number, got \(text)") }
                return n.doubleValue
            }
            func string() throws -> String {
                guard let s = value as? String else { throw DaemonError(.config, "tov.settings: \(key) must be a JSON string, got \(text)") }
                return s
            }
            switch key {
            case "budget": selection.budget = try Budget(json: text)
            case "policy":
                guard let policy = Policy(rawValue: try string()) else { throw DaemonError(.config, "tov.settings: unknown policy \(text)") }
                selection.policy = policy
            case "score_fn":
                guard let function = ScoreFunction(rawValue: try string()) else { throw DaemonError(.config, "tov.settings: unknown score_fn \(text)") }
                selection.scoreFunction = function
            case "method":
                guard let method = TrajectoryMethod(rawValue: try string()) else { throw DaemonError(.config, "tov.settings: unknown method \(text)") }
                selection.method = method
            case "bins": selection.bins = Int(try number())
            case "seed": selection.seed = Int64(try number())
            case "u_size": uSize = Int(try number())
            case "epochs": epochs = Int(try number())
            case "lr": learningRate = try number()
            case "val_lr_ratio": valLearningRateRatio = try number()
            case "pretrain_steps": pretrainSteps = Int(try number())
            case "surrogate":
                surrogate = try JSONDecoder().decode(SurrogateShapePatch.self, from: Data(text.utf8)).applied(to: SurrogateShape())
            case "zval_debounce_seconds": zvalDebounceSeconds = try number()
            case "max_attempts": maxAttempts = Int(try number())
            case "max_text_bytes": maxTextBytes = Int(try number())
            case "rebase_growth": rebaseGrowth = try number()
            default: continue  // a newer schema's key: ignore rather than refuse to run
            }
        }
    }

    /// `surrogate` may name only some fields; the rest keep their defaults.
    private struct SurrogateShapePatch: Decodable {
        var layers: Int?, width: Int?, heads: Int?, context: Int?, vocab: Int?
        func applied(to base: SurrogateShape) -> SurrogateShape {
            var s = base
            if let layers { s.layers = layers }
            if let width { s.width = width }
            if let heads { s.heads = heads }
            if let context { s.context = context }
            if let vocab { s.vocab = vocab }
            return s
        }
    }
}
