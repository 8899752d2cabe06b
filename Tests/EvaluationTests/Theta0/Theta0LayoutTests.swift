import Foundation
import JSONL
import Surrogate
import Testing
@testable import Evaluation

@Suite("θ0's loss on responses as plain text")
struct Theta0LayoutTests {
    static let rows = (0..<60).map { i in
        JSONLExample(prompt: "Question \(i % 12): which colour is the stone?", response: ["red", "green", "blue"][i % 3] + " stone")
    }

    @Test func aModelPretrainedOnPlainTextKnowsTheResponsesThereNotAfterSEP() {
        let tokenizer = Tokenizer.train(sample: Self.rows.map { Array(($0.prompt + "\n" + $0.response).utf8) }, vocabSize: 300)
        let model = Model(config: .tiny, seed: 2)
        var options = TrainingOptions()
        options.epochs = 30
        options.learningRate = 1e-2
        options.batchTokens = 256
        let text = Self.rows.map { Example(prompt: [], response: tokenizer.encode(Array(($0.prompt + "\n" + $0.response).utf8)), allTokens: true) }
        model.train(on: text, options: options, progress: nil)

        let plain = ToVEvaluation.plainTextResponseLoss(model, tokenizer: tokenizer, Self.rows)
        let scoring = model.losses(Self.rows.map { tokenizer.example(prompt: Array($0.prompt.utf8), response: Array($0.response.utf8)) })
        let sepLayout = scoring.reduce(0) { $0 + Double($1.meanNLL) } / Double(scoring.count)
        // Each response is one of three colours, then " stone": as plain text the model has learned
        // that (about ln 3 / 2 per token at best); after the never-seen SEP token it has not.
        #expect(plain < 1.5, "plain-text response loss \(plain)")
        #expect(sepLayout > plain + 1, "SEP layout \(sepLayout) vs plain text \(plain)")
    }

    @Test func aUniformModelScoresLnVOnEveryRowAndEmptyResponsesAreSkipped() {
        let tokenizer = Tokenizer.train(sample: Self.rows.map { Array($0.prompt.utf8) }, vocabSize: 300)
        let model = try! Model(config: .tiny, parameters: [Float](repeating: 0, count: ParameterLayout(.tiny).count))
        let rows = Self.rows + [JSONLExample(prompt: "no answer", response: "")]
        let loss = ToVEvaluation.plainTextResponseLoss(model, tokenizer: tokenizer, rows)
        #expect(abs(loss - log(300)) < 1e-4)
    }
}
