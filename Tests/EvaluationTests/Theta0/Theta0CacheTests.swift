import Foundation
import Surrogate
import Testing
@testable import Evaluation

@Suite("θ0 cache keys")
struct Theta0CacheTests {
    @Test func fingerprintSeparatesFieldsAndContent() {
        var a = Fingerprint(), b = Fingerprint(), c = Fingerprint()
        a.add("ab"); a.add("c")
        b.add("a"); b.add("bc")
        c.add("ab"); c.add("c")
        #expect(a.value != b.value)
        #expect(a.value == c.value)
        #expect(a.hex.count == 16)
    }

    @Test func theta0CacheKeyCoversWhatShapesIt() {
        let pretraining = Theta0Pretraining(recipe: Theta0Recipe(), cacheDirectory: "/nonexistent")
        let config = ModelConfig.tiny
        let key = pretraining.key(documents: docs("a", "b"), config: config, tokenizer: nil)
        #expect(key == pretraining.key(documents: docs("a", "b"), config: config, tokenizer: nil))
        #expect(key != pretraining.key(documents: docs("a", "c"), config: config, tokenizer: nil))
        #expect(key != pretraining.key(documents: docs("a", "b"), config: ModelConfig(layers: 1, width: 16, heads: 2, context: 16, vocabSize: 300), tokenizer: nil))
        var other = pretraining
        other.recipe.maxSteps += 1
        #expect(key != other.key(documents: docs("a", "b"), config: config, tokenizer: nil))
        let tokenizer = Tokenizer.train(sample: [Array("hello hello".utf8)], vocabSize: 262)
        #expect(key != pretraining.key(documents: docs("a", "b"), config: config, tokenizer: tokenizer))
        var scoring = pretraining
        scoring.recipe.layout = .scoring
        #expect(key != scoring.key(documents: docs("a", "b"), config: config, tokenizer: nil))
    }

    /// θ0s cached before the layout existed (an hour of pretraining each) keep their keys: a recipe
    /// without a layout encodes as it did then.
    @Test func aRecipeWithoutALayoutEncodesAsBefore() throws {
        let encoded = String(decoding: try JSONEncoder().encode(Theta0Recipe()), as: UTF8.self)
        #expect(!encoded.contains("layout"))
        var recipe = Theta0Recipe()
        recipe.layout = .scoring
        #expect(String(decoding: try JSONEncoder().encode(recipe), as: UTF8.self).contains("\"layout\":\"scoring\""))
    }

    /// In the scoring layout θ0 reads each row's prompt, the separator token, then its response, as the
    /// scoring pass does; in the text layout a newline, and never the separator.
    @Test func theScoringLayoutPutsTheSeparatorBetweenPromptAndResponse() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("theta0-layout-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let documents = (0..<120).map {
            PretrainingCorpus.Document(prompt: "question \($0 % 9): where does the river go", response: "to the sea \($0 % 5)")
        }
        var recipe = Theta0Recipe()
        recipe.maxSteps = 2
        recipe.evaluateEvery = 1
        recipe.tokenizerDocuments = 50
        var windows: [String: [[Int32]]] = [:]
        for layout in Theta0Layout.allCases {
            recipe.layout = layout
            let pretraining = Theta0Pretraining(recipe: recipe, cacheDirectory: directory)
            let (tokenizer, _, summary) = try pretraining.model(documents: documents, config: .tiny, tokenizer: nil) { _, _, _ in }
            #expect(summary.trainingWindows > 0)
            windows[layout.rawValue] = pretraining.windows(documents, tokenizer: tokenizer, config: .tiny)
        }
        let separators = { (w: [[Int32]]) in w.reduce(0) { $0 + $1.filter { $0 == Tokenizer.separator }.count } }
        #expect(separators(windows["text"]!) == 0)
        #expect(separators(windows["scoring"]!) >= documents.count - 1, "one separator per row (a row may straddle two windows)")
    }
}

private func docs(_ texts: String...) -> [PretrainingCorpus.Document] {
    texts.map { PretrainingCorpus.Document(prompt: "", response: $0) }
}
