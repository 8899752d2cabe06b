import Foundation

extension Model {
    /// Writes what the PyTorch reference (Benchmarks/reference/torch_reference.py) needs to check this
    /// engine: `config.json`, `params.f32` (the arena, little-endian float32, ``ParameterLayout`` order),
    /// `grads.f32` (gradients of the batch loss) and `batch.json` (each example's packed input, target
    /// positions and tokens, and our per-example losses and batch loss).
    public func exportReference(to directory: String, examples: [Example]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ours = losses(examples)
        let batchLoss = forwardBackward(examples)
        var layoutJSON: [[String: Any]] = []
        for tensor in layout.tensors {
            layoutJSON.append(["name": tensor.name, "shape": tensor.shape, "offset": tensor.offset])
        }
        let config: [String: Any] = [
            "layers": self.config.layers, "width": self.config.width, "heads": self.config.heads,
            "context": self.config.context, "vocab_size": self.config.vocabSize, "tensors": layoutJSON,
        ]
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: URL(fileURLWithPath: directory + "/config.json"))
        try params.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: directory + "/params.f32"))
        try grads.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: directory + "/grads.f32"))
        var items: [[String: Any]] = []
        for (example, loss) in zip(examples, ours) {
            let (input, targets) = example.layout(context: self.config.context)
            items.append([
                "input": input.map(Int.init), "target_positions": targets.map(\.position),
                "target_tokens": targets.map { Int($0.token) }, "loss": Double(loss.meanNLL),
            ])
        }
        let batch: [String: Any] = ["examples": items, "batch_loss": Double(batchLoss)]
        try JSONSerialization.data(withJSONObject: batch, options: [.sortedKeys]).write(to: URL(fileURLWithPath: directory + "/batch.json"))
    }
}
