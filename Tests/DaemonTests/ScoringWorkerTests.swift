@testable import Daemon
import Foundation
import Testing

/// The worker's pure parts: which losses may become a score, and the stop signal that interrupts
/// an unfinished batch.
@Suite("Scoring worker, pure parts")
struct ScoringWorkerTests {
    static func base(_ losses: [Float], uncertainty: Float = -1) -> BaseLossRecord {
        BaseLossRecord(losses: losses, uncertainty: uncertainty, tokens: 3)
    }

    @Test func finiteLossesAreAScore() {
        #expect(ScoringWorker.nonFiniteLosses(base: Self.base([2.5, 2.25]), val: [2.4, 2.2], modelVersion: 3) == nil)
        // ψ = -inf (a token predicted with certainty) is a legitimate uncertainty, not a divergence.
        #expect(ScoringWorker.nonFiniteLosses(base: Self.base([2.5, 2.25], uncertainty: -.infinity), val: [2.4, 2.2], modelVersion: 3) == nil)
    }

    @Test func anyNonFiniteLossIsNotAScore() throws {
        let cases: [(BaseLossRecord, [Float])] = [
            (Self.base([.nan, 2]), [1, 1]),
            (Self.base([2, 2]), [1, .infinity]),
            (Self.base([2, -.infinity]), [1, 1]),
            (Self.base([2, 2], uncertainty: .nan), [1, 1]),
        ]
        for (base, val) in cases {
            let detail = try #require(ScoringWorker.nonFiniteLosses(base: base, val: val, modelVersion: 7))
            #expect(detail.contains("model version 7") && detail.contains("lr"))
        }
    }

    @Test func stopHandlersRunOnceWhenSetAndAtOnceAfterwards() {
        let flag = StopFlag()
        let calls = CallCounter()
        let kept = flag.onSet { calls.add() }
        let removed = flag.onSet { calls.add(100) }
        #expect(kept != nil && removed != nil)
        flag.remove(removed!)
        #expect(calls.value == 0 && !flag.isSet)
        flag.set()
        #expect(calls.value == 1 && flag.isSet)
        flag.set()
        #expect(calls.value == 1)
        // Registered after the stop: runs immediately, nothing to remove.
        #expect(flag.onSet { calls.add() } == nil)
        #expect(calls.value == 2)
    }

    @Test func resumeOnceTakesTheFirstResultEvenBeforeTheContinuationExists() async throws {
        let once = ResumeOnce<Int>()
        once.resume(with: .success(1))
        once.resume(with: .success(2))
        let value = try await withCheckedThrowingContinuation { once.install($0) }
        #expect(value == 1)
    }
}

final class CallCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func add(_ n: Int = 1) { lock.withLock { count += n } }
}
