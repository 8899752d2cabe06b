import Foundation
import Selection
import Surrogate

/// How θ0 (and a proxy's θ0) is pretrained: a language model on ``PretrainingCorpus`` documents, with a
/// held-out early stop inside a step budget. Everything here shapes the weights, so all of it is in ``key``.
public struct Theta0Recipe: Codable, Sendable, Equatable {
    /// Upper bound on optimizer steps (the CPU budget; docs/evaluation.md gives its wall time).
    public var maxSteps = 2400
    public var learningRate = 3e-3
    /// Held-out loss is measured every this many steps; training stops after `patience` checks
    /// without a new best, and the best weights are kept.
    public var evaluateEvery = 100
    public var patience = 3
    /// Share of documents held out for the early stop (at most `maxHeldOutWindows` windows).
    public var heldOutShare = 0.02
    public var maxHeldOutWindows = 256
    public var seed: UInt64 = 0
    /// Documents the tokenizer is learned from (θ0 only; a proxy reuses θ0's tokenizer).
    public var tokenizerDocuments = 3000

    public init() {}
}

/// What pretraining did, stored in the checkpoint's metadata and shown in the report.
public struct Theta0Summary: Codable, Sendable, Equatable {
    public var steps: Int
    public var stoppedEarly: Bool
    public var bestHeldOutLoss: Double
    /// (step, held-out loss) at every check.
    public var curve: [[Double]]
    public var trainingWindows: Int
    public var trainingTokens: Int
    public var wallSeconds: Double
    public var cached = false
}

/// Pretrains θ0 or loads it from the cache, keyed by everything that shapes it.
public struct Theta0Pretraining {
    public typealias Progress = (_ stage: String, _ done: Int, _ total: Int) -> Void
    public var recipe: Theta0Recipe
    public var cacheDirectory: String

    public init(recipe: Theta0Recipe, cacheDirectory: String) {
        self.recipe = recipe
        self.cacheDirectory = cacheDirectory
    }

    /// The cache key: corpus text, model shape, tokenizer (when given) and recipe. A new field of the
    /// recipe changes the key because the whole recipe is encoded.
    public func key(documents: [String], config: ModelConfig, tokenizer: Tokenizer?) -> String {
        var f = Fingerprint()
        f.add("theta0 v2")
        for d in documents { f.add(d) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        f.add(try! encoder.encode(config))
        f.add(try! encoder.encode(recipe))
        if let tokenizer { f.add(tokenizer.serialized()) }
        return f.hex
    }

    /// θ0 for `config`: read from the cache, or pretrained on `documents` and written there. Without a
    /// `tokenizer` one is learned from the documents (the surrogate's θ0); a proxy passes θ0's tokenizer
    /// so both models read the same tokens.
    public func model(documents: [String], config: ModelConfig, tokenizer given: Tokenizer?,
                      progress: @escaping Progress) throws -> (Tokenizer, Model, Theta0Summary) {
        let key = key(documents: documents, config: config, tokenizer: given)
        let path = "\(cacheDirectory)/theta0-\(config.layers)x\(config.width)-\(key).tovckpt"
        if FileManager.default.fileExists(atPath: path) {
            let cached = try SurrogateCheckpoint.read(from: path)
            guard cached.model.config == config, cached.metadata["key"] == key,
                  var summary = cached.metadata["summary"].flatMap({ try? JSONDecoder().decode(Theta0Summary.self, from: Data($0.utf8)) }) else {
                throw EvaluationError("\(path) does not match its name (another model or an older format): delete it and rerun")
            }
            summary.cached = true
            return (cached.tokenizer, cached.model, summary)
        }
        let started = Date()
        let tokenizer: Tokenizer
        if let given {
            tokenizer = given
        } else {
            progress("tokenizer", 0, config.vocabSize)
            tokenizer = Tokenizer.train(sample: documents.prefix(recipe.tokenizerDocuments).map { Array($0.utf8) },
                                        vocabSize: config.vocabSize) { done, total in progress("tokenizer", done, total) }
        }
        // Windows of context − 1 tokens: pretraining examples append EOT.
        var windows = PretrainingCorpus.windows(documents.map { tokenizer.encode($0) }, length: config.context - 1)
        var random = SplitMix64(seed: recipe.seed &+ 17)
        windows.shuffle(using: &random)
        let heldOutCount = min(recipe.maxHeldOutWindows, max(1, Int(Double(windows.count) * recipe.heldOutShare)))
        guard windows.count > heldOutCount * 2 else {
            throw EvaluationError("the pretraining corpus has only \(windows.count) windows of \(config.context - 1) tokens: raise --pretrain-rows")
        }
        let heldOut = windows.prefix(heldOutCount).map { Example(prompt: [], response: $0, allTokens: true) }
        let train = windows.dropFirst(heldOutCount).map { Example(prompt: [], response: $0, allTokens: true) }

        let model = Model(config: config, seed: recipe.seed)
        var options = TrainingOptions()
        options.epochs = 1000
        options.maxSteps = recipe.maxSteps
        options.learningRate = Float(recipe.learningRate)
        options.schedule = .warmupCosine
        options.warmupSteps = max(1, recipe.maxSteps / 20)
        options.seed = recipe.seed
        func heldOutLoss(_ parameters: [Float]) -> Double {
            let probe = try! Model(config: config, parameters: parameters)
            let losses = probe.losses(heldOut)
            return losses.reduce(0) { $0 + Double($1.meanNLL) * Double($1.tokenCount) } / Double(max(losses.reduce(0) { $0 + $1.tokenCount }, 1))
        }
        // The early stop runs inside the training callback: training itself keeps one schedule and one
        // optimizer state, and `shouldStop` ends it once `patience` checks brought no new best.
        let state = EarlyStop()
        state.best = (0, heldOutLoss(model.parameters), model.parameters)
        state.curve = [[0, state.best.loss]]
        let patience = recipe.patience, every = recipe.evaluateEvery
        options.shouldStop = { [state] in state.stop }
        var lastStep = 0
        model.train(on: Array(train), options: options) { p in
            lastStep = p.step
            progress("pretraining θ0 \(config.layers)×\(config.width) (loss \(String(format: "%.3f", p.loss)), held-out best \(String(format: "%.3f", state.best.loss)))", p.step, p.totalSteps)
            guard p.step % every == 0 else { return }
            let loss = heldOutLoss(model.parameters)
            state.curve.append([Double(p.step), loss])
            if loss < state.best.loss {
                state.best = (p.step, loss, model.parameters)
            } else if p.step - state.best.step >= patience * every {
                state.stop = true
            }
        }
        let best = try Model(config: config, parameters: state.best.parameters)
        let summary = Theta0Summary(steps: lastStep, stoppedEarly: state.stop, bestHeldOutLoss: state.best.loss, curve: state.curve,
                                    trainingWindows: train.count, trainingTokens: train.reduce(0) { $0 + $1.response.count },
                                    wallSeconds: Date().timeIntervalSince(started))
        try FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
        let metadata = ["kind": "theta0", "key": key,
                        "summary": String(decoding: try JSONEncoder().encode(summary), as: UTF8.self)]
        let bytes = SurrogateCheckpoint.encode(model: best, tokenizer: tokenizer, metadata: metadata)
        // Written under a temporary name and renamed, so an interrupted run never leaves a half file.
        let temporary = path + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
            throw EvaluationError("cannot write \(temporary): check that --cache is writable")
        }
        _ = try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: temporary, toPath: path)
        return (tokenizer, best, summary)
    }
}

/// Mutable early-stop state shared with the training callbacks (the trainer runs them on its thread).
final class EarlyStop: @unchecked Sendable {
    var best: (step: Int, loss: Double, parameters: [Float]) = (0, .infinity, [])
    var curve: [[Double]] = []
    var stop = false
}
