import Foundation
import Surrogate
import Testing
@testable import Evaluation

@Suite("θ0 pretraining resumes")
struct Theta0ResumeTests {
    static let documents = (0..<240).map { i in
        PretrainingCorpus.Document(prompt: "", response: "document \(i): the river \(i % 7) meets the sea at \(i % 11) and carries \(i * 13 % 97) stones to the shore")
    }

    static func recipe() -> Theta0Recipe {
        var recipe = Theta0Recipe()
        recipe.maxSteps = 40
        recipe.evaluateEvery = 10
        recipe.patience = 100
        recipe.tokenizerDocuments = 100
        return recipe
    }

    /// Pretrains in `directory`, asking to stop once training reports `stopAt` (nil: never).
    static func pretrain(in directory: String, stopAt: Int?) throws -> (Tokenizer, Model, Theta0Summary) {
        let stop = StopRequest()
        let pretraining = Theta0Pretraining(recipe: recipe(), cacheDirectory: directory, stop: stop)
        return try pretraining.model(documents: documents, config: .tiny, tokenizer: nil) { stage, done, _ in
            if let stopAt, stage.hasPrefix("pretraining"), done == stopAt { #expect(stop.request()) }
        }
    }

    /// Pretrains in `directory` until the stop at `step`, which must end the run with a resume point.
    static func interrupt(in directory: String, at step: Int) {
        let error = #expect(throws: EvaluationError.self) { try pretrain(in: directory, stopAt: step) }
        #expect(error?.description.contains("stopped θ0 pretraining at step \(step) of 40") == true, "\(String(describing: error))")
    }

    /// Equal but for rounding: training is bit-exact for one BLAS thread count, but other tests that
    /// score at the same time switch OpenBLAS's process-wide count (``BLASThreads``), which reorders sums
    /// by an ulp. A resume that lost the optimizer state, the schedule or a batch is off by far more.
    static func close(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-4 }
    }

    static func close(_ a: [[Double]], _ b: [[Double]]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in x.count == y.count && zip(x, y).allSatisfy { abs($0 - $1) <= 1e-5 } }
    }

    static func files(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    @Test(arguments: [15, 20])
    func anInterruptedRunGoesOnToTheSameWeights(stopAt: Int) throws {
        let root = try Fixtures.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (_, straight, straightSummary) = try Self.pretrain(in: root + "/straight", stopAt: nil)

        let cache = root + "/interrupted"
        Self.interrupt(in: cache, at: stopAt)
        let left = try Self.files(in: cache)
        #expect(left.count == 1 && left[0].hasSuffix(".tovckpt.resume"), "only the resume point: \(left)")

        let (tokenizer, resumed, summary) = try Self.pretrain(in: cache, stopAt: nil)
        #expect(Self.close(resumed.parameters, straight.parameters))
        #expect(summary.resumedAtStep == stopAt)
        #expect(summary.steps == straightSummary.steps)
        #expect(Self.close(summary.curve, straightSummary.curve))
        let done = try Self.files(in: cache)
        #expect(done.count == 1 && done[0].hasSuffix(".tovckpt"), "the resume point is gone once θ0 is cached: \(done)")

        // The next run reads the cache; the tokenizer came back from the resume point unchanged.
        let (cachedTokenizer, cached, cachedSummary) = try Self.pretrain(in: cache, stopAt: nil)
        #expect(cachedSummary.cached)
        #expect(cachedTokenizer.serialized() == tokenizer.serialized())
        #expect(cached.parameters.map(\.bitPattern) == resumed.parameters.map(\.bitPattern))
    }

    @Test func aKilledRunResumesFromItsLastHeldOutCheck() throws {
        let root = try Fixtures.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (_, straight, _) = try Self.pretrain(in: root + "/straight", stopAt: nil)
        // Stopped at step 25, then its resume point replaced by the one written at the check of step
        // 20, as a kill -9 between the two would have left it.
        let cache = root + "/killed"
        Self.interrupt(in: cache, at: 20)
        let resumePoint = cache + "/" + (try Self.files(in: cache))[0]
        let atCheck = try Data(contentsOf: URL(fileURLWithPath: resumePoint))
        Self.interrupt(in: cache, at: 25)
        try atCheck.write(to: URL(fileURLWithPath: resumePoint))
        let (_, resumed, summary) = try Self.pretrain(in: cache, stopAt: nil)
        #expect(summary.resumedAtStep == 20)
        #expect(Self.close(resumed.parameters, straight.parameters))
    }

    @Test func aDamagedResumePointIsReportedNotIgnored() throws {
        let root = try Fixtures.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: root) }
        Self.interrupt(in: root, at: 12)
        let resumePoint = root + "/" + (try Self.files(in: root))[0]
        var bytes = try Data(contentsOf: URL(fileURLWithPath: resumePoint))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: resumePoint))
        let error = #expect(throws: EvaluationError.self) { try Self.pretrain(in: root, stopAt: nil) }
        #expect(error?.description.contains("delete it to pretrain from the start") == true)
    }

    @Test func aSecondRequestOrOneNobodyListensToMeansExit() {
        let idle = StopRequest()
        #expect(!idle.request(), "nothing listening: the caller exits")
        let busy = StopRequest()
        busy.listening {
            #expect(busy.request())
            #expect(!busy.request(), "asked twice: the caller exits")
        }
        #expect(busy.isRequested)
    }
}
