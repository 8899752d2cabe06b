import Selection
import Surrogate

/// Per-row scoring: the losses of rows outside U under θ_bas^1..L and θ_val^1..L, and φ from them.
/// The daemon's workers and `tovd evaluate` both call these; the daemon stores the losses and derives φ
/// in SQL (`tov.phi`, the same formula as ``Selection/tovScore(baseLosses:valLosses:function:)``).
public enum RowScoring {
    /// The scoring encoding: the response's first `context` tokens and as much of the prompt's end as
    /// fits before it (the layout of the whole encoding at a bounded cost, whatever the row's size).
    public static func examples(_ rows: [RowText], tokenizer: Tokenizer, context: Int) -> [Example] {
        rows.map { tokenizer.example(prompt: $0.prompt, response: $0.response, context: context) }
    }

    /// Rows per chunk of a long pass: a pass over a large pool takes minutes, and progress is
    /// reported after each chunk.
    public static let chunkRows = 256

    /// `compute` over `examples` in chunks of ``chunkRows``, in order; `done` goes up by each
    /// chunk's rows and `report` hears the new count after each.
    public static func inChunks<T>(_ examples: [Example], done: inout Int, report: ((Int) -> Void)?,
                                   _ compute: ([Example]) -> [T]) -> [T] {
        var out: [T] = []
        out.reserveCapacity(examples.count)
        for start in stride(from: 0, to: examples.count, by: chunkRows) {
            let end = min(start + chunkRows, examples.count)
            out += compute(Array(examples[start..<end]))
            done += end - start
            report?(done)
        }
        return out
    }

    /// ℓ(θ_bas^l, x) for l = 1...L, ψ and the response tokens under θ_bas^L.
    public static func baseLosses(_ examples: [Example], base: [Model], options: Model.ScoringOptions = .init()) -> [BaseLossRecord] {
        let perEpoch = base.map { $0.losses(examples, options: options) }
        return examples.indices.map { i in
            BaseLossRecord(losses: perEpoch.map { $0[i].meanNLL }, uncertainty: perEpoch.last![i].psi, tokens: perEpoch.last![i].tokenCount)
        }
    }

    /// ℓ(θ_val^l, x) for l = 1...L.
    public static func valLosses(_ examples: [Example], val: [Model], options: Model.ScoringOptions = .init()) -> [[Float]] {
        let perEpoch = val.map { $0.losses(examples, options: options) }
        return examples.indices.map { i in perEpoch.map { $0[i].meanNLL } }
    }

    /// The selection's inputs: φ = (1/L) Σ_l F(base_l − val_l), ψ and the length (response tokens).
    public static func scoredRow(id: Int64, base: BaseLossRecord, val: [Float], function: ScoreFunction) -> ScoredRow {
        ScoredRow(id: id, score: tovScore(baseLosses: base.losses.map(Double.init), valLosses: val.map(Double.init), function: function),
                  uncertainty: Double(base.uncertainty), length: base.tokens)
    }
}
