/// Test-only fault hooks: slow work down so a test can observe what happens meanwhile (a batch
/// slower than its lease, a shutdown mid-training, every phase of a tiny bootstrap). Part of the
/// daemon's configuration; `tovd run` reads them from `TOVD_FAULT_*` environment variables (the one
/// place, Tovd+Run.swift), so tests that start a real `tovd` set them there. Never set in production.
public struct Faults: Sendable, Equatable {
    /// Every batch that scores rows with a model takes this much longer (a big surrogate, a loaded host).
    public var scoreDelay: Duration?
    /// θ_val training stalls this long first, standing in for a large surrogate.
    public var trainDelay: Duration?
    /// Each training phase lasts at least this long (wall time, on the training thread).
    public var phaseDelay: Duration?

    public init(scoreDelay: Duration? = nil, trainDelay: Duration? = nil, phaseDelay: Duration? = nil) {
        self.scoreDelay = scoreDelay
        self.trainDelay = trainDelay
        self.phaseDelay = phaseDelay
    }

    /// None: production.
    public static let none = Faults()

    /// From `TOVD_FAULT_SCORE_DELAY_MS`, `TOVD_FAULT_TRAIN_DELAY_MS` and `TOVD_FAULT_PHASE_DELAY_MS`
    /// (milliseconds; unset or not a number: no fault).
    public init(environment: [String: String]) {
        let ms = { (name: String) in environment[name].flatMap(Int.init).map { Duration.milliseconds($0) } }
        self.init(scoreDelay: ms("TOVD_FAULT_SCORE_DELAY_MS"), trainDelay: ms("TOVD_FAULT_TRAIN_DELAY_MS"),
                  phaseDelay: ms("TOVD_FAULT_PHASE_DELAY_MS"))
    }
}
