@testable import Daemon
import Testing

/// The trainer's rules as a value: snapshots in, actions out, no database. Each defect the review of
/// the running daemon found in these rules has its case here.
@Suite("Trainer policy")
struct TrainerPolicyTests {
    static let t0 = ContinuousClock.now

    /// A settled pipeline: a complete base model and a version for the current inputs, nothing pending.
    static func settled(_ edit: (inout TrainerSnapshot) -> Void = { _ in }) -> TrainerSnapshot {
        var settings = Settings()
        settings.uSize = 100
        settings.zvalDebounceSeconds = 5
        settings.targets = [TargetSettings(id: 1, name: "default", settings: settings)]
        var s = TrainerSnapshot(
            settings: settings, readyRows: 1_000, validatingRows: 0, pendingRequests: [],
            currentBase: .init(version: 1, uSize: 100, config: BaseModelConfig(settings: settings), poolRowsAtDraw: 1_000),
            lastBaseFailure: nil, divergedBase: nil, memoryProblem: nil,
            targets: [settledTarget(1, "default", settings: settings)], broken: [])
        edit(&s)
        return s
    }

    /// A target whose current inputs are served by a version on base 1.
    static func settledTarget(_ id: Int, _ name: String, settings: Settings) -> TrainerSnapshot.Target {
        var own = settings
        own.targets = []
        return .init(id: id, name: name, settings: own, zval: .init(version: 3, ageSeconds: 600, rows: 50), currentInputsServed: true,
                     lastVersion: .init(baseVersion: 1, zvalVersion: 3, method: settings.selection.method.rawValue))
    }

    static func decide(_ s: TrainerSnapshot, at seconds: Int = 0) -> TrainerAction {
        var policy = TrainerPolicy()
        return policy.decide(s, now: t0 + .seconds(seconds))
    }

    static func activity(_ action: TrainerAction) -> TrainerActivity? {
        if case .wait(let activity, _) = action { return activity }
        return nil
    }

    @Test func aSettledPipelineIdles() {
        #expect(Self.activity(Self.decide(Self.settled()))?.activity == "idle")
    }

    @Test func nothingIsTrainedWhileAVersionRescores() {
        let action = Self.decide(Self.settled { $0.scoringVersion = 7; $0.zval.version = 4; $0.currentInputsServed = false })
        #expect(Self.activity(action)?.activity == "rescoring")
    }

    @Test func bootstrapWaitsForUThenTrains() {
        let empty = Self.settled { $0.currentBase = nil; $0.readyRows = 40 }
        let wait = Self.activity(Self.decide(empty))
        #expect(wait?.activity == "waiting for rows" && wait?.done == 40 && wait?.total == 100)
        #expect(Self.decide(Self.settled { $0.currentBase = nil }) == .trainBase(reason: "bootstrap", requests: []))
        // A base that failed on an unreadable checkpoint is rebased, and says so.
        #expect(Self.decide(Self.settled { $0.currentBase = nil; $0.lastBaseFailure = "checkpoint unreadable: theta0 epoch 0 is missing" })
                == .trainBase(reason: "rebase: checkpoint unreadable: theta0 epoch 0 is missing", requests: []))
    }

    // MARK: - Defect 3: a rebase that cannot start never blocks refreshes

    @Test func aRebaseWaitingForRowsLetsZvalRefreshTheCurrentBase() {
        // u_size raised above the pool: the rebase waits for rows; Z_val changed meanwhile.
        let s = Self.settled { $0.settings.uSize = 5_000; $0.zval.version = 4; $0.currentInputsServed = false }
        #expect(Self.decide(s) == .refresh(target: 1, base: 1, reason: "Z_val changed", requests: []))
        // And with nothing to refresh, status says why the rebase waits.
        let idle = Self.activity(Self.decide(Self.settled { $0.settings.uSize = 5_000 }))
        #expect(idle?.activity == "waiting for rows" && idle?.detail?.contains("rebase (u_size changed) waits") == true)
    }

    @Test func aSurrogateTooLargeIsASettingsProblemAndDoesNotBlockRefresh() {
        let problem = "surrogate 64×4096 needs about 900 GiB to train"
        let s = Self.settled { $0.settings.surrogate.width = 4096; $0.memoryProblem = problem }
        let blocked = Self.activity(Self.decide(s))
        #expect(blocked?.activity == "blocked" && blocked?.detail?.contains(problem) == true)
        #expect(TrainerPolicy.settingsProblem(s) == problem)
        var refresh = s
        refresh.pendingRequests = [.init(id: 9, kind: .refresh)]
        #expect(Self.decide(refresh) == .refresh(target: 1, base: 1, reason: "tovd refresh", requests: [9]))
        // Before any base model there is nothing to refresh: the problem is the whole story.
        #expect(Self.activity(Self.decide(Self.settled { $0.currentBase = nil; $0.memoryProblem = problem }))?.detail == problem)
    }

    // MARK: - An imported θ0 (issue 25)

    /// The decision once the rebase debounce (5 s) has passed.
    static func decideAfterDebounce(_ s: TrainerSnapshot) -> TrainerAction {
        var policy = TrainerPolicy()
        _ = policy.decide(s, now: t0)
        return policy.decide(s, now: t0 + .seconds(5))
    }

    @Test func namingAnImportedTheta0RebasesFromIt() {
        let shape = Settings.SurrogateShape()
        let s = Self.settled { $0.settings.theta0 = "corpus-v1"; $0.theta0 = .init(name: "corpus-v1", shape: shape) }
        #expect(TrainerPolicy.theta0Problem(s) == nil)
        #expect(TrainerPolicy.settingsProblem(s) == nil)
        #expect(Self.decideAfterDebounce(s) == .trainBase(reason: "rebase: theta0 changed", requests: []))
        // Back to null: a rebase to the bootstrap.
        let back = Self.settled { $0.currentBase!.config.theta0 = "corpus-v1" }
        #expect(Self.decideAfterDebounce(back) == .trainBase(reason: "rebase: theta0 changed", requests: []))
        // A base started from it is current: nothing to do; pretrain_steps is not its business.
        let current = Self.settled {
            $0.settings.theta0 = "corpus-v1"; $0.theta0 = .init(name: "corpus-v1", shape: shape)
            $0.currentBase!.config.theta0 = "corpus-v1"; $0.settings.pretrainSteps = 5
        }
        #expect(Self.activity(Self.decide(current))?.activity == "idle")
        // Under the bootstrap, pretrain_steps still rebases.
        #expect(Self.decideAfterDebounce(Self.settled { $0.settings.pretrainSteps = 5 }) == .trainBase(reason: "rebase: pretrain_steps changed", requests: []))
    }

    @Test func aMissingTheta0BlocksOnlyTheRebaseAndIsASettingsProblem() {
        let s = Self.settled { $0.settings.theta0 = "nope"; $0.zval.version = 4; $0.currentInputsServed = false }
        let problem = TrainerPolicy.settingsProblem(s)
        #expect(problem?.contains("theta0 = \"nope\": no θ0 of that name is imported") == true)
        // Z_val changed meanwhile: the current base refreshes.
        #expect(Self.decide(s) == .refresh(target: 1, base: 1, reason: "Z_val changed", requests: []))
        // Nothing to refresh: status says why the rebase waits, and nothing spins.
        let idle = Self.activity(Self.decide(Self.settled { $0.settings.theta0 = "nope" }))
        #expect(idle?.activity == "blocked" && idle?.detail?.contains("rebase (theta0 changed) waits") == true)
        // Before any base model: the bootstrap does not start from something else.
        let first = Self.activity(Self.decide(Self.settled { $0.currentBase = nil; $0.settings.theta0 = "nope" }))
        #expect(first?.activity == "blocked" && first?.detail == problem)
    }

    @Test func aTheta0OfAnotherShapeIsRefusedWithTheSettingToUse() {
        var other = Settings.SurrogateShape()
        other.layers = 2
        other.width = 64
        let s = Self.settled { $0.settings.theta0 = "small"; $0.theta0 = .init(name: "small", shape: other) }
        let problem = TrainerPolicy.theta0Problem(s)
        #expect(problem?.contains("is a 2×64") == true && problem?.contains(#"{"layers": 2, "width": 64, "heads": 4, "context": 256, "vocab": 4096}"#) == true)
        #expect(TrainerPolicy.settingsProblem(s) == problem)
        #expect(Self.activity(Self.decide(s))?.activity == "blocked")
        var refresh = s
        refresh.pendingRequests = [.init(id: 3, kind: .refresh)]
        #expect(Self.decide(refresh) == .refresh(target: 1, base: 1, reason: "tovd refresh", requests: [3]))
        // Set surrogate to its shape: it fits.
        let fits = Self.settled { $0.settings.theta0 = "small"; $0.settings.surrogate = other; $0.theta0 = .init(name: "small", shape: other) }
        #expect(TrainerPolicy.theta0Problem(fits) == nil)
        #expect(Self.decideAfterDebounce(fits) == .trainBase(reason: "rebase: surrogate, theta0 changed", requests: []))
        // A stored config nobody can read is reported, not trained from.
        #expect(TrainerPolicy.theta0Problem(Self.settled { $0.settings.theta0 = "x"; $0.theta0 = .init(name: "x", shape: nil) })?
                    .contains("cannot be read") == true)
    }

    @Test func aBaseThatDivergedBeforeBlocksOnlyItsRebase() {
        let s = Self.settled { $0.settings.learningRate = 1; $0.divergedBase = "diverged: loss is nan"; $0.zval.version = 4
                               $0.currentInputsServed = false }
        #expect(Self.decide(s) == .refresh(target: 1, base: 1, reason: "Z_val changed", requests: []))
        #expect(TrainerPolicy.settingsProblem(s) == "diverged: loss is nan")
        // Settings back to what the current base was trained with: no problem any more.
        #expect(TrainerPolicy.settingsProblem(Self.settled { $0.divergedBase = "diverged: loss is nan" }) == nil)
    }

    // MARK: - Defect 4: requests coalesce

    @Test func everyPendingRefreshRequestIsServedByOneVersion() {
        let s = Self.settled { $0.pendingRequests = [.init(id: 3, kind: .refresh), .init(id: 4, kind: .refresh), .init(id: 8, kind: .refresh)] }
        #expect(Self.decide(s) == .refresh(target: 1, base: 1, reason: "tovd refresh", requests: [3, 4, 8]))
    }

    @Test func rebaseRequestsCoalesceAndWaitOutTheDebounce() {
        let s = Self.settled { $0.pendingRequests = [.init(id: 5, kind: .rebase), .init(id: 6, kind: .rebase), .init(id: 7, kind: .refresh)] }
        var policy = TrainerPolicy()
        #expect(Self.activity(policy.decide(s, now: Self.t0))?.activity == "debouncing")
        #expect(policy.decide(s, now: Self.t0 + .seconds(5)) == .trainBase(reason: "rebase: tovd rebase", requests: [5, 6]))
    }

    // MARK: - Debounce

    @Test func theDebounceCountsFromTheFirstChangeSeen() {
        var policy = TrainerPolicy()
        var s = Self.settled { $0.zval.version = 4; $0.zval.ageSeconds = 0; $0.currentInputsServed = false }
        #expect(Self.activity(policy.decide(s, now: Self.t0))?.activity == "debouncing")
        // Z_val keeps changing every second: the clock does not restart.
        for second in 1..<5 {
            s.zval.version += 1
            #expect(Self.activity(policy.decide(s, now: Self.t0 + .seconds(second)))?.activity == "debouncing")
        }
        #expect(policy.decide(s, now: Self.t0 + .seconds(5)) == .refresh(target: 1, base: 1, reason: "Z_val changed", requests: []))
        // A quiet Z_val older than the window refreshes at once.
        #expect(Self.decide(Self.settled { $0.zval.version = 4; $0.currentInputsServed = false })
                == .refresh(target: 1, base: 1, reason: "Z_val changed", requests: []))
    }

    // MARK: - Defect 2: a missing or unreadable checkpoint is retrained

    @Test func aBrokenCheckpointOfAVersionBeingRescoredFailsIt() {
        let s = Self.settled { $0.scoringVersion = 7; $0.broken = [.init(owner: .version(7, target: 1, scoring: true), problem: "1 of 2 checkpoints missing")] }
        #expect(Self.decide(s) == .repair([.failVersion(7, problem: "1 of 2 checkpoints missing")]))
    }

    @Test func aBrokenCheckpointOfTheCompleteVersionRefreshesOnce() {
        // The snapshot does not count a version with a broken checkpoint as serving the inputs.
        let s = Self.settled { $0.currentInputsServed = false; $0.broken = [.init(owner: .version(6, target: 1, scoring: false), problem: "val epoch 2: bad hash")] }
        #expect(Self.decide(s) == .refresh(target: 1, base: 1, reason: "checkpoint of model version 6 unreadable", requests: []))
        // While its replacement rescores, nothing more is done for it.
        var rescoring = s
        rescoring.scoringVersion = 8
        #expect(Self.activity(Self.decide(rescoring))?.activity == "rescoring")
    }

    @Test func aBrokenBaseCheckpointFailsTheBaseModel() {
        let s = Self.settled { $0.broken = [.init(owner: .base(1), problem: "3 of 3 checkpoints missing")] }
        #expect(Self.decide(s) == .repair([.failBase(1, problem: "3 of 3 checkpoints missing")]))
    }

    // MARK: - Defect 14: a θ_val that diverged is not retrained every tick

    @Test func aVersionThatDivergedOnTheseInputsBlocksUntilTheyChange() {
        let s = Self.settled { $0.zval.version = 4; $0.currentInputsServed = false; $0.divergedVersion = "diverged: θ_val epoch 1 loss is nan" }
        let blocked = Self.activity(Self.decide(s))
        #expect(blocked?.activity == "blocked" && TrainerPolicy.settingsProblem(s) == "diverged: θ_val epoch 1 loss is nan")
        // An operator who asks anyway gets a retry.
        var asked = s
        asked.pendingRequests = [.init(id: 2, kind: .refresh)]
        #expect(Self.decide(asked) == .refresh(target: 1, base: 1, reason: "Z_val changed", requests: [2]))
    }

    @Test func zvalEmptyWaits() {
        #expect(Self.activity(Self.decide(Self.settled { $0.zval.rows = 0; $0.currentInputsServed = false }))?.activity == "waiting for Z_val")
    }
}

/// The single-target cases read and write the one target 'default' as the snapshot's own facts, as
/// they did before targets.
extension TrainerSnapshot {
    var zval: Zval {
        get { targets[0].zval }
        set { targets[0].zval = newValue }
    }
    var scoringVersion: Int? {
        get { targets[0].scoringVersion }
        set { targets[0].scoringVersion = newValue }
    }
    var currentInputsServed: Bool {
        get { targets[0].currentInputsServed }
        set { targets[0].currentInputsServed = newValue }
    }
    var divergedVersion: String? {
        get { targets[0].divergedVersion }
        set { targets[0].divergedVersion = newValue }
    }
}
