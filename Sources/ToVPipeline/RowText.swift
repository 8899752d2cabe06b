/// The raw text of one example, as bytes: the tokenizer takes any byte sequence.
public struct RowText: Sendable, Equatable {
    /// The row's id: `tov.candidates.id` in the daemon, the pool index in `tovd evaluate`. U's draw and
    /// the selection's random half hash it, so the same ids give the same U and the same selection.
    public var id: Int64
    public var prompt: [UInt8]
    public var response: [UInt8]
    /// tov.candidates.source, where the trainer reads it (U): rows of one source share their repeated
    /// prompt prefix, which θ0's bootstrap pretraining keeps once.
    public var source: String?

    public init(id: Int64, prompt: [UInt8], response: [UInt8], source: String? = nil) {
        self.id = id
        self.prompt = prompt
        self.response = response
        self.source = source
    }
}

/// ℓ(θ_bas^l, x) for l = 1...L, with ψ under θ_bas^L and the number of response tokens averaged.
public struct BaseLossRecord: Sendable, Equatable {
    public var losses: [Float]
    public var uncertainty: Float
    public var tokens: Int

    public init(losses: [Float], uncertainty: Float, tokens: Int) {
        self.losses = losses
        self.uncertainty = uncertainty
        self.tokens = tokens
    }

    /// Nothing measured yet: the start of a record built one pass at a time.
    public static let empty = BaseLossRecord(losses: [], uncertainty: 0, tokens: 0)

    /// Adds the next pass's losses; ψ and the tokens are the latest pass's.
    public mutating func append(_ next: BaseLossRecord) {
        losses += next.losses
        uncertainty = next.uncertainty
        tokens = next.tokens
    }
}
