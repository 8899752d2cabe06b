/// Shape of the surrogate transformer. Capital letters in the math code: L layers, C width,
/// NH heads, maxT context, V vocabulary.
public struct ModelConfig: Codable, Sendable, Equatable {
    public var layers: Int
    public var width: Int
    public var heads: Int
    public var context: Int
    public var vocabSize: Int

    /// The accepted ranges. Bounds that no useful surrogate reaches keep every size computation
    /// (parameter count, activations, `width / heads`) far from overflow; the settings CHECK of
    /// `tov.settings.surrogate` must stay inside them.
    public static let layerRange = 1...256
    public static let widthRange = 1...16_384
    public static let contextRange = 2...65_536
    /// 256 bytes, end-of-text, separator and padding come first (Tokenizer).
    public static let vocabSizeRange = 259...(1 << 20)
    /// As many float32 parameters as a checkpoint may hold (16 GiB).
    public static let maxParameters = 1 << 32

    /// For code constants and tests: traps on an invalid shape. Shapes that come from data (a checkpoint,
    /// `tov.settings`, the command line) go through ``validated(layers:width:heads:context:vocabSize:)``.
    public init(layers: Int, width: Int, heads: Int, context: Int, vocabSize: Int) {
        self.init(unchecked: layers, width, heads, context, vocabSize)
        if let problem { preconditionFailure("invalid model shape: \(problem)") }
    }

    /// The shape, or a ``SurrogateError`` with code `.config` that names the field that is wrong.
    public static func validated(layers: Int, width: Int, heads: Int, context: Int, vocabSize: Int) throws -> ModelConfig {
        let config = ModelConfig(unchecked: layers, width, heads, context, vocabSize)
        try config.validate()
        return config
    }

    private init(unchecked layers: Int, _ width: Int, _ heads: Int, _ context: Int, _ vocabSize: Int) {
        self.layers = layers
        self.width = width
        self.heads = heads
        self.context = context
        self.vocabSize = vocabSize
    }

    /// Throws a ``SurrogateError`` with code `.config` when the shape cannot be built.
    public func validate() throws {
        if let problem { throw SurrogateError(.config, "invalid surrogate shape: \(problem)") }
    }

    /// What is wrong with the shape, or nil. Checked in this order so that each later check may rely
    /// on the earlier ones (no division by zero, no overflow).
    var problem: String? {
        func outside(_ name: String, _ value: Int, _ range: ClosedRange<Int>) -> String? {
            range.contains(value) ? nil : "\(name) is \(value), it must be between \(range.lowerBound) and \(range.upperBound)"
        }
        if let bad = outside("layers", layers, Self.layerRange) ?? outside("width", width, Self.widthRange)
            ?? outside("heads", heads, 1...width) ?? outside("context", context, Self.contextRange)
            ?? outside("vocab_size", vocabSize, Self.vocabSizeRange) { return bad }
        if width % heads != 0 { return "width \(width) is not divisible by heads \(heads)" }
        let count = ParameterLayout(self).count
        if count > Self.maxParameters { return "\(count) parameters, more than the \(Self.maxParameters) a checkpoint may hold" }
        return nil
    }

    enum CodingKeys: String, CodingKey {
        case layers, width, heads, context, vocabSize = "vocab_size"
    }

    /// Decodes and validates: a checkpoint's config is data, so a bad value is a ``SurrogateError``
    /// (code `.config`), never a trap. Fields must be JSON integers (`2.5` and `"4"` are refused).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self = try Self.validated(layers: try c.decode(Int.self, forKey: .layers), width: try c.decode(Int.self, forKey: .width),
                                  heads: try c.decode(Int.self, forKey: .heads), context: try c.decode(Int.self, forKey: .context),
                                  vocabSize: try c.decode(Int.self, forKey: .vocabSize))
    }

    /// For gradient checks and fast tests.
    public static let tiny = ModelConfig(layers: 2, width: 16, heads: 2, context: 16, vocabSize: 300)
    /// The daemon's default surrogate: fast enough to score on 2 cores.
    public static let `default` = ModelConfig(layers: 4, width: 256, heads: 4, context: 256, vocabSize: 4096)
    /// About twice the default's FLOPs per token (for the benchmark).
    public static let large = ModelConfig(layers: 6, width: 320, heads: 5, context: 256, vocabSize: 4096)

    /// Forward FLOPs per token, counting the matmuls (2 per multiply-add) and attention at full context.
    public func forwardFlopsPerToken(sequenceLength T: Int) -> Double {
        let C = Double(width), L = Double(layers)
        let perLayer = 2 * (C * 3 * C + C * C + C * 4 * C + 4 * C * C) + 2 * 2 * Double(T) * C / 2
        return L * perLayer + 2 * C * Double(vocabSize)
    }
}

/// One training or scoring example, as token ids.
///
/// The model sees `prompt + [SEP] + response + [EOT]` and the loss covers the response tokens and the
/// final EOT: ℓ(θ, x) is the mean NLL of the response given the prompt. When that is longer than the
/// context, the prompt is cut from the LEFT first (its end, next to the response, is kept), then the
/// response from the RIGHT (only its beginning is scored, and the last target is the next response
/// token rather than EOT). With `allTokens` (pretraining) the sequence is `response + [EOT]`, every
/// position predicts the next token, and it is cut from the right.
public struct Example: Sendable, Equatable {
    public var prompt: [Int32]
    public var response: [Int32]
    public var allTokens: Bool

    public init(prompt: [Int32], response: [Int32], allTokens: Bool = false) {
        self.prompt = prompt
        self.response = response
        self.allTokens = allTokens
    }

    public static let endOfText: Int32 = 256
    public static let separator: Int32 = 257

    /// The model input (≤ context tokens) and, for each target, (input position, target token).
    func layout(context: Int) -> (input: [Int32], targets: [(position: Int, token: Int32)]) {
        if allTokens {
            let sequence = response + [Self.endOfText]
            let length = min(sequence.count - 1, context)
            guard length > 0 else { return ([sequence[0]], []) }
            let input = Array(sequence[0..<length])
            return (input, (0..<length).map { ($0, sequence[$0 + 1]) })
        }
        // input = prompt' + SEP + response', targets = response'[0...] + next
        let keptResponse = min(response.count, context - 1)
        let keptPrompt = min(prompt.count, context - 1 - keptResponse)
        var input = Array(prompt.suffix(keptPrompt))
        let separatorPosition = input.count
        input.append(Self.separator)
        input.append(contentsOf: response.prefix(keptResponse))
        var targets: [(Int, Int32)] = []
        targets.reserveCapacity(keptResponse + 1)
        for i in 0..<keptResponse { targets.append((separatorPosition + i, response[i])) }
        let next = keptResponse < response.count ? response[keptResponse] : Self.endOfText
        targets.append((separatorPosition + keptResponse, next))
        return (input, targets)
    }
}

/// ℓ(θ, x) and friends for one example.
public struct ExampleLoss: Sendable, Equatable {
    /// Mean negative log-likelihood over the targets, in nats per token.
    public var meanNLL: Float
    /// Number of targets (response tokens scored, incl. the final EOT).
    public var tokenCount: Int
    /// ψ = (1/T) Σ log[p(1−p)], p the probability of each target token: high when the model is unsure.
    public var psi: Float
    /// Per-target NLL, only when asked for.
    public var perToken: [Float]
}
