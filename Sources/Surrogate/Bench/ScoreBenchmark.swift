import Foundation

/// FLOP accounting and the PyTorch export for `tovd bench score` (the ToV scoring workload on real rows).
public enum ScoreBenchmark {
    /// FLOPs a standard implementation spends on one forward pass of `example`: every layer at every
    /// position (QKV, attention projection, MLP), causal attention over the lower triangle only (q·kᵀ
    /// and att·v), and the LM head at the target positions only. Ours computes less in the last layer,
    /// which is how the fraction of the limit can pass 100 %.
    public static func standardFlops(_ c: ModelConfig, _ example: Example) -> Double {
        let (input, targets) = example.layout(context: c.context)
        let C = Double(c.width), T = Double(input.count)
        let linear = 2 * T * (3 * C * C + C * C + 8 * C * C)
        let attention = 2 * 2 * (T * (T + 1) / 2) * C
        return Double(c.layers) * (linear + attention) + 2 * Double(targets.count) * C * Double(c.vocabSize)
    }

    /// The shapes of the packed rows: mean input length and mean targets per row.
    public static func shape(_ c: ModelConfig, _ examples: [Example]) -> (tokens: Double, targets: Double) {
        var tokens = 0, targets = 0
        for example in examples {
            let (input, t) = example.layout(context: c.context)
            tokens += input.count
            targets += t.count
        }
        let n = Double(max(examples.count, 1))
        return (Double(tokens) / n, Double(targets) / n)
    }

    /// Writes what `torch_reference.py score DIR` loads: `config.json` (shape and arena layout),
    /// `base_<l>.f32` and `val_<l>.f32` (each checkpoint's arena, little-endian float32) and
    /// `rows.json` (each row's packed input, target positions and tokens, as Example.layout makes
    /// them, and the batch size the daemon uses).
    public static func exportForTorch(to directory: String, base: [Model], val: [Model], examples: [Example], batchSize: Int) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let model = base[0]
        let config: [String: Any] = [
            "layers": model.config.layers, "width": model.config.width, "heads": model.config.heads,
            "context": model.config.context, "vocab_size": model.config.vocabSize, "epochs": base.count,
            "tensors": model.layout.tensors.map { ["name": $0.name, "shape": $0.shape, "offset": $0.offset] as [String: Any] },
        ]
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: URL(fileURLWithPath: directory + "/config.json"))
        for (kind, models) in [("base", base), ("val", val)] {
            for (l, m) in models.enumerated() {
                try m.params.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: "\(directory)/\(kind)_\(l + 1).f32"))
            }
        }
        let rows: [[String: Any]] = examples.map { example in
            let (input, targets) = example.layout(context: model.config.context)
            return ["input": input.map(Int.init), "target_positions": targets.map(\.position), "target_tokens": targets.map { Int($0.token) }]
        }
        try JSONSerialization.data(withJSONObject: ["rows": rows, "batch_size": batchSize] as [String: Any])
            .write(to: URL(fileURLWithPath: directory + "/rows.json"))
    }
}
