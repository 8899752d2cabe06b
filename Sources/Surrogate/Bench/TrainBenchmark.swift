import Foundation

/// The daemon's training workloads for `tovd bench train`: the steps θ0's bootstrap pretraining, an
/// epoch of the base trajectory and a θ_val pass take, timed through `Model.step` (what `train` runs
/// per step), with the FLOP limit and the export PyTorch trains on (torch_reference.py train).
public enum TrainBenchmark {
    /// One workload: its first steps' batches, as `Model.train` draws them, and each step's learning rate.
    public struct Workload: Sendable {
        public var name: String
        public var batches: [[Example]]
        public var learningRates: [Float]
        public var options: TrainingOptions

        /// The first `steps` batches `model.train(on: examples, options: options)` would take.
        public init(name: String, model: Model, examples: [Example], options: TrainingOptions, steps: Int) {
            var options = options
            options.maxSteps = steps
            let all = model.trainingBatches(examples, options: options).flatMap { $0 }
            let total = min(all.count, steps)
            self.name = name
            self.batches = Array(all.prefix(total))
            self.learningRates = (0..<total).map { model.learningRate(step: $0, total: total, options: options) }
            self.options = options
        }
    }

    /// Packed input tokens of a batch (what both engines compute on; PyTorch pads on top of them).
    public static func tokens(_ c: ModelConfig, _ batch: [Example]) -> Int {
        batch.reduce(0) { $0 + $1.layout(context: c.context).input.count }
    }

    /// FLOPs a standard implementation spends on a training step of `batch`: 3× the standard forward
    /// (``ScoreBenchmark/standardFlops(_:_:)``: every layer at every position, causal attention over the
    /// lower triangle, LM head at the targets), the backward pass being twice the forward's GEMMs.
    public static func standardFlops(_ c: ModelConfig, _ batch: [Example]) -> Double {
        3 * batch.reduce(0) { $0 + ScoreBenchmark.standardFlops(c, $1) }
    }

    /// Seconds for `workload`'s steps from `parameters` with a fresh optimizer, and each step's loss.
    /// One untimed step first (activation buffers grow to the largest batch's size once), then the
    /// weights and optimizer are put back, so every repeat computes the same numbers.
    public static func time(_ config: ModelConfig, parameters: [Float], _ workload: Workload) throws -> (seconds: Double, losses: [Float]) {
        let model = try Model(config: config, parameters: parameters)
        let empty = OptimizerState(m: [], v: [], step: 0)
        if let largest = workload.batches.max(by: { tokens(config, $0) < tokens(config, $1) }) {
            model.step(on: largest, learningRate: 0, options: workload.options)
        }
        try model.restore(parameters: parameters, optimizer: empty)
        var losses: [Float] = []
        let started = DispatchTime.now().uptimeNanoseconds
        for (batch, lr) in zip(workload.batches, workload.learningRates) {
            losses.append(model.step(on: batch, learningRate: lr, options: workload.options))
        }
        return (Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9, losses)
    }

    /// Writes what `torch_reference.py train DIR` loads: `config.json` (shape, arena layout with each
    /// tensor's weight decay flag), `params.f32` (the starting arena, little-endian float32) and
    /// `<workload>.json` per workload (its batches' packed rows as Example.layout makes them, learning
    /// rates, weight decay and clipping).
    public static func exportForTorch(to directory: String, config c: ModelConfig, parameters: [Float], workloads: [Workload]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let layout = ParameterLayout(c)
        let json: [String: Any] = [
            "layers": c.layers, "width": c.width, "heads": c.heads, "context": c.context, "vocab_size": c.vocabSize,
            "tensors": layout.tensors.map { ["name": $0.name, "shape": $0.shape, "offset": $0.offset, "decays": $0.decays] as [String: Any] },
        ]
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]).write(to: URL(fileURLWithPath: directory + "/config.json"))
        try parameters.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: directory + "/params.f32"))
        for workload in workloads {
            let batches: [[[String: Any]]] = workload.batches.map { batch in
                batch.map { example in
                    let (input, targets) = example.layout(context: c.context)
                    return ["input": input.map(Int.init), "target_positions": targets.map(\.position), "target_tokens": targets.map { Int($0.token) }]
                }
            }
            let spec: [String: Any] = [
                "batches": batches, "learning_rates": workload.learningRates.map(Double.init),
                "weight_decay": Double(workload.options.weightDecay), "clip_norm": Double(workload.options.clipNorm),
            ]
            try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: "\(directory)/\(workload.name).json"))
        }
    }
}
