import Foundation
import Testing
@testable import Surrogate

/// A model shape from data (a checkpoint, `tov.settings.surrogate`, the command line) is validated
/// with an error that names the field, never a trap.
@Suite struct ModelConfigTests {
    @Test func theShippedShapesAreValid() throws {
        for config in [ModelConfig.tiny, .default, .large] { try config.validate() }
        #expect(try ModelConfig.validated(layers: 1, width: 4096, heads: 64, context: 8192, vocabSize: 65536).heads == 64)
    }

    @Test(arguments: [
        ((2, 16, 0, 16, 300), "heads is 0"),
        ((2, 33, 2, 16, 300), "not divisible by heads"),
        ((0, 16, 2, 16, 300), "layers is 0"),
        ((2, -16, 2, 16, 300), "width is -16"),
        ((2, 16, 2, 1, 300), "context is 1"),
        ((2, 16, 2, 16, 258), "vocab_size is 258"),
        ((2, Int.max, 2, 16, 300), "width is"),
        ((48, 4096, 64, 8192, 65536), "parameters, more than"),
    ])
    func badShapesAreNamed(_ shape: (Int, Int, Int, Int, Int), _ message: String) {
        let error = #expect(throws: SurrogateError.self) {
            try ModelConfig.validated(layers: shape.0, width: shape.1, heads: shape.2, context: shape.3, vocabSize: shape.4)
        }
        #expect(error?.code == .config)
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
    }

    @Test func jsonUsesVocabSizeAndValidates() throws {
        let json = String(decoding: try JSONEncoder().encode(ModelConfig.tiny), as: UTF8.self)
        #expect(json.contains("\"vocab_size\":300"))
        #expect(try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8)) == .tiny)
        let bad = Data(#"{"layers":2,"width":33,"heads":2,"context":16,"vocab_size":300}"#.utf8)
        #expect(throws: SurrogateError.self) { try JSONDecoder().decode(ModelConfig.self, from: bad) }
    }
}
