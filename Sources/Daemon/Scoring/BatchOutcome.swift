import Foundation

/// A claimed job with the raw bytes of its row; `prompt` and `response` are nil when the row is
/// over `max_text_bytes` (the claim did not fetch them), and the sizes say by how much.
struct ClaimedJob: Sendable {
    var candidateID: Int64
    var modelVersion: Int
    /// The claim's number: the fence every write of the claim matches.
    var attempts: Int
    /// Tries alone that did not finish before this claim (``Queries/jobTryAloneMark``).
    var triedAlone: Int
    var prompt: [UInt8]?
    var response: [UInt8]?
    var ageSeconds: Double
    var promptBytes: Int
    var responseBytes: Int

    var key: JobKey { JobKey(candidateID: candidateID, modelVersion: modelVersion) }
    /// A job claimed before: its batch crashed or timed out, or it was tried alone and did not finish.
    var isRetry: Bool { attempts > 1 }
    /// Tries that did not finish: the batch's, then each try alone.
    var failedTries: Int { isRetry ? 1 + triedAlone : 0 }
    /// Only for rows that fit (scoring never sees a row the claim left unfetched).
    var text: RowText { RowText(id: candidateID, prompt: prompt ?? [], response: response ?? []) }
}

struct JobKey: Hashable {
    var candidateID: Int64
    var modelVersion: Int
}

/// Everything one batch will write, gathered before the completing transaction.
struct BatchOutcome {
    struct Reject {
        var candidateID: Int64, modelVersion: Int, attempts: Int
        var reason: RejectReason, detail: String
        init(job: ClaimedJob, reason: RejectReason, detail: String) {
            candidateID = job.candidateID
            modelVersion = job.modelVersion
            // The tries it had: a row rejected on its first claim had one.
            attempts = max(job.failedTries, 1)
            self.reason = reason
            self.detail = detail
        }
        var key: JobKey { JobKey(candidateID: candidateID, modelVersion: modelVersion) }
    }
    struct BaseLoss { var candidateID: Int64, baseVersion: Int, record: BaseLossRecord }
    /// `importance`: the row's n-gram log weight under the version's model (score_dsir's), 0 without one.
    struct Score { var candidateID: Int64, modelVersion: Int, base: BaseLossRecord, valLosses: [Float], importance: Double }
    struct Unscorable { var candidateID: Int64, modelVersion: Int, detail: String }

    /// The jobs this batch completes.
    var jobs: [ClaimedJob]
    /// Jobs given back untouched (their version failed to load after the claim).
    var released: [ClaimedJob] = []
    /// Live versions that could not be loaded: new ready rows are queued for them.
    var waitFor: Set<Int> = []
    var rejects: [Reject] = []
    var ready: [(Int64, Int, Int)] = []
    var baseLosses: [BaseLoss] = []
    var scores: [Score] = []
    var unscorable: [Unscorable] = []
}
