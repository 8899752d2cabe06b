import Foundation
import Selection
import Surrogate
import Synchronization

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
    /// How a row is laid out in θ0's text; nil is `.text`, so the keys (and cache entries) of θ0s
    /// pretrained before this field existed stay valid.
    public var layout: Theta0Layout? = nil

    public init() {}
}

/// What θ0 reads between a row's prompt and its response.
public enum Theta0Layout: String, Codable, Sendable, CaseIterable {
    /// A newline: plain text, as a language model's corpus reads.
    case text
    /// The separator token every score is measured after (`prompt + [SEP] + response`, the scoring
    /// layout of ``Example``): θ0 has seen that token and what follows it before the base trajectory starts.
    case scoring
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
    /// The step an interrupted pretraining went on from (nil: it ran in one go).
    public var resumedAtStep: Int? = nil
}

/// Pretrains θ0 or loads it from the cache, keyed by everything that shapes it.
///
/// Pretraining a 4 × 256 θ0 takes the better part of an hour on 2 cores, so it resumes: at every
/// held-out check, and when ``stop`` asks it to, it saves the weights, AdamW's state and the early
/// stop's state beside the cache entry (`<entry>.resume`), and a rerun goes on from that step with
/// the same batches and schedule, to the same weights as a run never interrupted.
public struct Theta0Pretraining {
    public typealias Progress = (_ stage: String, _ done: Int, _ total: Int) -> Void
    public var recipe: Theta0Recipe
    public var cacheDirectory: String
    /// When it is requested, pretraining saves where it is and throws.
    public var stop: StopRequest

    public init(recipe: Theta0Recipe, cacheDirectory: String, stop: StopRequest = StopRequest()) {
        self.recipe = recipe
        self.cacheDirectory = cacheDirectory
        self.stop = stop
    }

    /// The cache key: corpus text, model shape, tokenizer (when given) and recipe. A new field of the
    /// recipe changes the key because the whole recipe is encoded.
    public func key(documents: [PretrainingCorpus.Document], config: ModelConfig, tokenizer: Tokenizer?) -> String {
        var f = Fingerprint()
        f.add("theta0 v2")
        for d in documents { f.add(d.text) }
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
    public func model(documents: [PretrainingCorpus.Document], config: ModelConfig, tokenizer given: Tokenizer?,
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
        let resumePath = path + ".resume"
        let resumed = try Theta0ResumePoint.read(from: resumePath, key: key, config: config)
        let tokenizer: Tokenizer
        if let given {
            tokenizer = given
        } else if let resumed {
            tokenizer = resumed.tokenizer
        } else {
            progress("tokenizer", 0, config.vocabSize)
            tokenizer = Tokenizer.train(sample: documents.prefix(recipe.tokenizerDocuments).map { Array($0.text.utf8) },
                                        vocabSize: config.vocabSize) { done, total in progress("tokenizer", done, total) }
        }
        var windows = windows(documents, tokenizer: tokenizer, config: config)
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
        var earlierSeconds = 0.0
        if let resumed {
            try model.restore(parameters: resumed.parameters, optimizer: resumed.optimizer)
            state.best = (resumed.state.bestStep, resumed.state.bestLoss, resumed.bestParameters)
            state.curve = resumed.state.curve
            options.startStep = resumed.state.step
            earlierSeconds = resumed.state.wallSeconds
        } else {
            state.best = (0, heldOutLoss(model.parameters), model.parameters)
            state.curve = [[0, state.best.loss]]
        }
        let patience = recipe.patience, every = recipe.evaluateEvery
        let stop = self.stop
        options.shouldStop = { [state] in
            if state.stop { return true }
            if stop.isRequested { state.interrupted = true }
            return state.interrupted
        }
        func save(step: Int) throws {
            let point = Theta0ResumePoint(tokenizer: tokenizer, parameters: model.parameters, optimizer: model.optimizerState,
                                          bestParameters: state.best.parameters,
                                          state: .init(step: step, bestStep: state.best.step, bestLoss: state.best.loss, curve: state.curve,
                                                       wallSeconds: earlierSeconds + Date().timeIntervalSince(started)))
            try point.write(to: resumePath, key: key, config: config)
        }
        var lastStep = resumed?.state.step ?? 0
        var saveError: Error?
        let title = "pretraining θ0 \(config.layers)×\(config.width)"
        if let resumed { progress("\(title) (resumed at step \(resumed.state.step))", resumed.state.step, recipe.maxSteps) }
        try stop.listening {
            model.train(on: Array(train), options: options) { p in
                lastStep = p.step
                progress("\(title) (loss \(String(format: "%.3f", p.loss)), held-out best \(String(format: "%.3f", state.best.loss)), \(String(format: "%.0f", p.tokensPerSecond)) tokens/s)", p.step, p.totalSteps)
                guard p.step % every == 0 else { return }
                let loss = heldOutLoss(model.parameters)
                state.curve.append([Double(p.step), loss])
                if loss < state.best.loss {
                    state.best = (p.step, loss, model.parameters)
                } else if p.step - state.best.step >= patience * every {
                    state.stop = true
                }
                // The last check needs no resume point: the finished θ0 is written next.
                if !state.stop, p.step < p.totalSteps, saveError == nil {
                    do { try save(step: p.step) } catch { saveError = error }
                }
            }
            if let saveError { throw saveError }
            if state.interrupted {
                guard !model.optimizerState.m.isEmpty else { throw EvaluationError("stopped before θ0 pretraining's first step") }
                try save(step: lastStep)
                throw EvaluationError("stopped θ0 pretraining at step \(lastStep) of \(recipe.maxSteps) and saved it in \(resumePath): rerun the same command to go on from there")
            }
        }
        let best = try Model(config: config, parameters: state.best.parameters)
        let summary = Theta0Summary(steps: lastStep, stoppedEarly: state.stop, bestHeldOutLoss: state.best.loss, curve: state.curve,
                                    trainingWindows: train.count, trainingTokens: train.reduce(0) { $0 + $1.response.count },
                                    wallSeconds: earlierSeconds + Date().timeIntervalSince(started), resumedAtStep: resumed?.state.step)
        let metadata = ["kind": "theta0", "key": key,
                        "summary": String(decoding: try JSONEncoder().encode(summary), as: UTF8.self)]
        try writeReplacing(path, SurrogateCheckpoint.encode(model: best, tokenizer: tokenizer, metadata: metadata))
        try? FileManager.default.removeItem(atPath: resumePath)
        return (tokenizer, best, summary)
    }
}

extension Theta0Pretraining {
    /// θ0's text in the recipe's layout, cut into windows of context − 1 tokens (pretraining examples
    /// append EOT), so a long passage is learned whole.
    func windows(_ documents: [PretrainingCorpus.Document], tokenizer: Tokenizer, config: ModelConfig) -> [[Int32]] {
        let encoded: [[Int32]] = documents.map { document in
            switch recipe.layout ?? .text {
            case .text: tokenizer.encode(document.text)
            case .scoring: tokenizer.encode(document.prompt) + [Tokenizer.separator] + tokenizer.encode(document.response)
            }
        }
        return PretrainingCorpus.windows(encoded, length: config.context - 1)
    }
}

/// Writes under a temporary name and renames, so an interrupted run never leaves a half file.
func writeReplacing(_ path: String, _ bytes: [UInt8]) throws {
    let temporary = path + ".partial"
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
        throw EvaluationError("cannot write \(temporary): check that --cache is writable")
    }
    _ = try? FileManager.default.removeItem(atPath: path)
    try FileManager.default.moveItem(atPath: temporary, toPath: path)
}

/// Where an unfinished θ0 pretraining stands, in the checkpoint format: the tokenizer, then the current
/// weights, AdamW's two moments and the best weights so far as one tensor run, and the step, the early
/// stop's state and the wall time spent in the metadata.
struct Theta0ResumePoint {
    struct State: Codable, Equatable {
        var step: Int
        var bestStep: Int
        var bestLoss: Double
        var curve: [[Double]]
        var wallSeconds: Double
    }
    var tokenizer: Tokenizer
    var parameters: [Float]
    var optimizer: OptimizerState
    var bestParameters: [Float]
    var state: State

    func write(to path: String, key: String, config: ModelConfig) throws {
        let n = parameters.count
        // Before the first step AdamW has no moments; a resume point is only written after steps.
        precondition(optimizer.m.count == n && optimizer.v.count == n && bestParameters.count == n)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let metadata = ["kind": "theta0-resume", "key": key, "adam_step": String(optimizer.step),
                        "state": String(decoding: try encoder.encode(state), as: UTF8.self)]
        let file = CheckpointFile(configJSON: Array(try encoder.encode(config)), tokenizer: tokenizer.serialized(), metadata: metadata,
                                  tensors: parameters + optimizer.m + optimizer.v + bestParameters)
        try writeReplacing(path, file.encoded())
    }

    /// The resume point at `path`, nil when there is none; one that is damaged or belongs to another
    /// θ0 is an error that says to delete it (pretraining would otherwise start over silently).
    static func read(from path: String, key: String, config: ModelConfig) throws -> Theta0ResumePoint? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        func unusable(_ why: String) -> EvaluationError {
            EvaluationError("\(path) cannot resume this θ0 pretraining (\(why)): delete it to pretrain from the start")
        }
        let file: CheckpointFile
        do { file = try CheckpointFile.read(from: path) } catch { throw unusable("\(error)") }
        let n = ParameterLayout(config).count
        guard file.metadata["kind"] == "theta0-resume", file.metadata["key"] == key,
              (try? JSONDecoder().decode(ModelConfig.self, from: Data(file.configJSON))) == config else {
            throw unusable("another model or recipe")
        }
        guard file.tensors.count == 4 * n, let adamStep = file.metadata["adam_step"].flatMap({ Int($0) }),
              let state = file.metadata["state"].flatMap({ try? JSONDecoder().decode(State.self, from: Data($0.utf8)) }) else {
            throw unusable("an incomplete training state")
        }
        let tokenizer: Tokenizer
        do { tokenizer = try Tokenizer(serialized: file.tokenizer) } catch { throw unusable("\(error)") }
        let t = file.tensors
        return Theta0ResumePoint(tokenizer: tokenizer, parameters: Array(t[0..<n]),
                                 optimizer: OptimizerState(m: Array(t[n..<2 * n]), v: Array(t[2 * n..<3 * n]), step: adamStep),
                                 bestParameters: Array(t[3 * n..<4 * n]), state: state)
    }
}

/// A request to stop a long run early (Ctrl-C, SIGTERM). Work that can stop cleanly, θ0 pretraining
/// (which then saves where it is), listens while it runs; a request nobody listens to is the caller's
/// to act on, by exiting: what finished before is on disk already (runs.jsonl, scores, the θ0 cache).
public final class StopRequest: Sendable {
    private struct State {
        var requested = false
        var listeners = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Records the request. False when nothing running will stop on it (or it was asked before), so
    /// the caller should exit now.
    public func request() -> Bool {
        state.withLock { state in
            defer { state.requested = true }
            return state.listeners > 0 && !state.requested
        }
    }

    public var isRequested: Bool { state.withLock { $0.requested } }

    func listening<T>(_ body: () throws -> T) rethrows -> T {
        state.withLock { $0.listeners += 1 }
        defer { state.withLock { $0.listeners -= 1 } }
        return try body()
    }
}

/// Mutable early-stop state shared with the training callbacks (the trainer runs them on its thread).
final class EarlyStop: @unchecked Sendable {
    // @unchecked: only the training thread touches it while training runs; the caller reads it after.
    var best: (step: Int, loss: Double, parameters: [Float]) = (0, .infinity, [])
    var curve: [[Double]] = []
    var stop = false
    /// Stopped by a ``StopRequest``, not by the early stop.
    var interrupted = false
}
