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
        let key = pretraining.key(documents: ["a", "b"], config: config, tokenizer: nil)
        #expect(key == pretraining.key(documents: ["a", "b"], config: config, tokenizer: nil))
        #expect(key != pretraining.key(documents: ["a", "c"], config: config, tokenizer: nil))
        #expect(key != pretraining.key(documents: ["a", "b"], config: ModelConfig(layers: 1, width: 16, heads: 2, context: 16, vocabSize: 300), tokenizer: nil))
        var other = pretraining
        other.recipe.maxSteps += 1
        #expect(key != other.key(documents: ["a", "b"], config: config, tokenizer: nil))
        let tokenizer = Tokenizer.train(sample: [Array("hello hello".utf8)], vocabSize: 262)
        #expect(key != pretraining.key(documents: ["a", "b"], config: config, tokenizer: tokenizer))
    }
}
