import CKernels
import COpenBLAS
import Foundation

/// Scoring and training throughput of the surrogate, with achieved GFLOP/s as a fraction of the
/// cblas_sgemm peak measured in the same run (MFU). `tovd bench model` prints it; the PyTorch
/// reference (Benchmarks/reference/torch_reference.py) measures the same shapes for the ratios.
public enum ModelBenchmark {
    public struct Result: Codable, Sendable {
        public var config: ModelConfig
        public var forwardTokensPerSecond: Double
        public var trainTokensPerSecond: Double
        public var forwardGFLOPS: Double
        public var trainGFLOPS: Double
    }

    /// The shapes both engines run: `sequences` examples of a `promptTokens` prompt and a
    /// `responseTokens` response (scoring computes logits for response positions only).
    public struct Workload: Codable, Sendable {
        public var sequences = 16
        public var promptTokens = 127
        public var responseTokens = 127
        public init() {}
        var tokensPerSequence: Int { promptTokens + 1 + responseTokens }
    }

    /// OpenBLAS threads and scoring streams (`BLASThreads`).
    public static func setThreads(_ threads: Int) { BLASThreads.set(threads) }

    /// GFLOP/s of one large square sgemm (the peak the MFU is measured against).
    public static func sgemmPeak(size: Int = 1536, repeats: Int = 6) -> Double {
        let a = [Float](repeating: 0.5, count: size * size), b = a
        var c = [Float](repeating: 0, count: size * size)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(size), Int32(size), Int32(size), 1, a, Int32(size), b, Int32(size), 0, &c, Int32(size))
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(size), Int32(size), Int32(size), 1, a, Int32(size), b, Int32(size), 0, &c, Int32(size))
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
        }
        return 2 * pow(Double(size), 3) / best / 1e9
    }

    /// GFLOP/s of the bf16 kernel (Sources/CKernels) on one 1536³ product per stream, `streams`
    /// single-threaded streams at once (as bf16 scoring runs it); nil where the CPU lacks AVX-512 BF16.
    public static func bf16Peak(streams: Int, size: Int = 1536, repeats: Int = 4) -> Double? {
        guard ScoringPrecision.isAvailable(.bf16) else { return nil }
        let a = [Float](repeating: 0.5, count: size * size)
        var packed = [UInt16](repeating: 0, count: tov_bf16_packed_count(Int32(size), Int32(size)))
        packed.withUnsafeMutableBufferPointer { tov_bf16_pack($0.baseAddress!, a, Int32(size), Int32(size)) }
        let pass: @Sendable (Int) -> Void = { [packed] _ in
            var c = [Float](repeating: 0, count: size * size)
            var scratch = [UInt16](repeating: 0, count: tov_bf16_scratch_count(Int32(size)))
            tov_bf16_gemm_avx512(&c, a, Int32(size), Int32(size), packed, Int32(size), 0, &scratch)
        }
        DispatchQueue.concurrentPerform(iterations: streams, execute: pass)
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: streams, execute: pass)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
        }
        return Double(streams) * 2 * pow(Double(size), 3) / best / 1e9
    }

    static func batch(_ config: ModelConfig, _ workload: Workload) -> [Example] {
        var g = Gaussian(seed: 1)
        func tokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(g.nextUInt64() % UInt64(config.vocabSize - 3)) } }
        return (0..<workload.sequences).map { _ in Example(prompt: tokens(workload.promptTokens), response: tokens(workload.responseTokens)) }
    }

    /// FLOPs of one scoring forward pass over the workload (matmuls, attention, LM head on targets).
    static func forwardFlops(_ c: ModelConfig, _ w: Workload) -> Double {
        let C = Double(c.width), L = Double(c.layers), T = Double(w.tokensPerSequence), S = Double(w.sequences)
        let linear = 2 * T * (3 * C * C + C * C + 8 * C * C) * L
        let attention = 2 * 2 * T * T * C * L            // q·kᵀ and att·v at full T×T (as sgemm computes them)
        let head = 2 * Double(w.responseTokens + 1) * C * Double(c.vocabSize)
        return S * (linear + attention + head)
    }

    /// Runs each config for about `seconds` per measurement.
    public static func run(configs: [ModelConfig] = [.default, .large], workload: Workload = Workload(), seconds: Double = 3) -> [Result] {
        configs.map { config in
            let model = Model(config: config, seed: 1)
            let examples = batch(config, workload)
            let tokens = Double(workload.sequences * workload.tokensPerSequence)
            func measure(_ body: () -> Void) -> Double {
                body()   // warm-up (allocates the activation buffers)
                var runs = 0
                let start = DispatchTime.now().uptimeNanoseconds
                var elapsed = 0.0
                repeat {
                    body()
                    runs += 1
                    elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
                } while elapsed < seconds
                return elapsed / Double(runs)
            }
            let forward = measure { _ = model.losses(examples) }
            let train = measure {
                model.forwardBackward(examples)
                model.adamWUpdate(learningRate: 1e-5, weightDecay: 0, clipNorm: 1)
            }
            let flops = forwardFlops(config, workload)
            return Result(config: config, forwardTokensPerSecond: tokens / forward, trainTokensPerSecond: tokens / train,
                          forwardGFLOPS: flops / forward / 1e9, trainGFLOPS: 3 * flops / train / 1e9)
        }
    }
}

extension ModelBenchmark {
    /// Seconds to learn a `vocabSize` BPE from `sample`, and encode throughput in MB/s on one core
    /// (cold chunk cache: every text is new to the tokenizer).
    public static func tokenizer(sample: [[UInt8]], vocabSize: Int = 4096) -> (trainSeconds: Double, encodeMBps: Double) {
        let start = DispatchTime.now().uptimeNanoseconds
        let tokenizer = Tokenizer.train(sample: sample, vocabSize: vocabSize)
        let trainSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        // Shuffle words so most chunks miss the cache, as fresh rows would.
        var g = Gaussian(seed: 5)
        let words = sample.joined().split(separator: 0x20)
        var text: [UInt8] = []
        while text.count < 8 << 20 {
            text += words[Int(g.nextUInt64() % UInt64(words.count))]
            text.append(0x20)
            if g.nextUInt64() % 7 == 0 { text += Array(String(g.nextUInt64() % 100_000).utf8) }
        }
        let encodeStart = DispatchTime.now().uptimeNanoseconds
        _ = tokenizer.encode(text)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - encodeStart) * 1e-9
        return (trainSeconds, Double(text.count) / seconds / 1e6)
    }
}
