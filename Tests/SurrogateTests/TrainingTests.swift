import Foundation
import Testing
@testable import Surrogate

@Suite("Learning on real text")
struct TrainingTests {
    /// Real English prose: this repository's own documentation. Trained on two files, evaluated on a
    /// third the model never saw.
    static func bytes(_ file: String) throws -> [UInt8] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return Array(try Data(contentsOf: root.appendingPathComponent("docs/\(file)")))
    }

    static func chunks(_ bytes: [UInt8], length: Int) -> [Example] {
        stride(from: 0, to: bytes.count - length, by: length).map {
            Example(prompt: [], response: bytes[$0..<($0 + length)].map(Int32.init), allTokens: true)
        }
    }

    @Test func heldOutLossFallsWellBelowTheUnigramEntropy() throws {
        let train = try Self.bytes("operations.md") + Self.bytes("selection.md")
        let heldOut = try Self.bytes("reliability.md")
        // Unigram entropy of the training bytes, in nats: what a model that ignores context achieves.
        var counts = [Double](repeating: 0, count: 256)
        for b in train { counts[Int(b)] += 1 }
        let unigram = -counts.filter { $0 > 0 }.reduce(0) { $0 + ($1 / Double(train.count)) * log($1 / Double(train.count)) }

        let model = Model(config: ModelConfig(layers: 2, width: 32, heads: 4, context: 32, vocabSize: 259), seed: 1)
        var options = TrainingOptions()
        options.epochs = 100
        options.maxSteps = 600
        options.batchTokens = 1024
        options.learningRate = 1e-2
        options.schedule = .warmupCosine
        options.warmupSteps = 20
        model.train(on: Self.chunks(train, length: 31), options: options, progress: nil)

        let losses = model.losses(Self.chunks(heldOut, length: 31))
        let heldOutLoss = losses.reduce(0) { $0 + Double($1.meanNLL) } / Double(losses.count)
        print("unigram entropy \(unigram) nats/byte, held-out loss \(heldOutLoss)")
        #expect(heldOutLoss < unigram - 0.4, "held-out \(heldOutLoss) vs unigram \(unigram)")
    }
}
