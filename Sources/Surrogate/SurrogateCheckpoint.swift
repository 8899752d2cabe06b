import Foundation

/// A model with its tokenizer, as stored in one checkpoint file (see `CheckpointFile` for the bytes).
public struct SurrogateCheckpoint {
    public var model: Model
    public var tokenizer: Tokenizer
    public var metadata: [String: String]

    public init(model: Model, tokenizer: Tokenizer, metadata: [String: String] = [:]) {
        self.model = model
        self.tokenizer = tokenizer
        self.metadata = metadata
    }

    /// Header (config, tokenizer, metadata) + the parameter arena in an LZ4 frame + a SHA-256 of it all.
    public static func encode(model: Model, tokenizer: Tokenizer, metadata: [String: String] = [:]) -> [UInt8] {
        let configJSON = Array(try! JSONEncoder().encode(model.config))
        return CheckpointFile(configJSON: configJSON, tokenizer: tokenizer.serialized(), metadata: metadata,
                              tensors: model.parameters).encoded()
    }

    /// Decodes and checks a checkpoint: its own checksums, the model config (``ModelConfig/validate()``),
    /// the tokenizer against the vocabulary and the parameter count against the config.
    ///
    /// - Parameters:
    ///   - bytes: the whole file, e.g. `tov.checkpoints.data`.
    ///   - expectedSHA256: the hex SHA-256 of the whole file recorded when it was written, e.g.
    ///     `tov.checkpoints.sha256`; a mismatch throws before anything is parsed. nil skips it.
    /// - Throws: ``SurrogateError`` with code `.checkpoint` on any corruption or mismatch; never traps.
    public static func decode(_ bytes: [UInt8], expectedSHA256: String? = nil) throws -> SurrogateCheckpoint {
        let file = try CheckpointFile.decode(bytes, expectedSHA256: expectedSHA256)
        let config: ModelConfig
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: Data(file.configJSON))
        } catch let error as SurrogateError {
            throw SurrogateError(.checkpoint, "checkpoint header holds an unusable model config (\(error.message)); write the checkpoint again")
        } catch {
            throw SurrogateError(.checkpoint, "checkpoint header holds no valid model config: \(error); write the checkpoint again")
        }
        let tokenizer = try Tokenizer(serialized: file.tokenizer)
        guard tokenizer.vocabSize <= config.vocabSize else {
            throw SurrogateError(.checkpoint, "checkpoint tokenizer has \(tokenizer.vocabSize) tokens but the model only \(config.vocabSize)")
        }
        let model = try Model(config: config, parameters: file.tensors)
        return SurrogateCheckpoint(model: model, tokenizer: tokenizer, metadata: file.metadata)
    }

    public static func read(from path: String) throws -> SurrogateCheckpoint {
        try decode(try CheckpointFile.readBytes(from: path))
    }
}

extension Tokenizer {
    /// Tokenizes one (prompt, response) pair for the model.
    public func example(prompt: [UInt8], response: [UInt8]) -> Example {
        Example(prompt: encode(prompt), response: encode(response))
    }
}
