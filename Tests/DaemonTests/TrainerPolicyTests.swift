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

    // MARK: - Several targets (issue 26): one base, a refresh per target

    /// A settled pipeline with the targets 'default' (1), 'drop' (2) and, with `three`, 'code' (3).
    static func targets(three: Bool = false, _ edit: (inout TrainerSnapshot) -> Void = { _ in }) -> TrainerSnapshot {
        var s = settled()
        let names = three ? ["default", "drop", "code"] : ["default", "drop"]
        s.targets = names.enumerated().map { settledTarget($0 + 1, $1, settings: s.settings) }
        s.settings.targets = s.targets.map { TargetSettings(id: $0.id, name: $0.name, settings: $0.settings) }
        edit(&s)
        return s
    }

    static func zvalChanged(_ t: inout TrainerSnapshot.Target, age: Double = 600) {
        t.zval.version += 1
        t.zval.ageSeconds = age
        t.currentInputsServed = false
    }

    @Test func aTargetRefreshesWhileAnotherTargetsVersionRescores() {
        let s = Self.targets { $0.targets[0].scoringVersion = 7; Self.zvalChanged(&$0.targets[1]) }
        #expect(Self.decide(s) == .refresh(target: 2, base: 1, reason: "Z_val changed", requests: []))
        // Nothing else due: the rescoring is what status shows, with the target it belongs to.
        let rescoring = Self.activity(Self.decide(Self.targets { $0.targets[1].scoringVersion = 8 }))
        #expect(rescoring == TrainerActivity("rescoring", detail: "target drop: model version 8 is scoring"))
    }

    @Test func aTargetWithoutZvalWaitsAndDoesNotHoldUpTheOthers() {
        let s = Self.targets {
            $0.targets[1].zval.rows = 0; $0.targets[1].currentInputsServed = false; $0.targets[1].lastVersion = nil
            Self.zvalChanged(&$0.targets[0])
        }
        #expect(Self.decide(s) == .refresh(target: 1, base: 1, reason: "Z_val changed", requests: []))
        let waiting = Self.activity(Self.decide(Self.targets { $0.targets[1].zval.rows = 0; $0.targets[1].currentInputsServed = false }))
        #expect(waiting == TrainerActivity("waiting for Z_val",
                                           detail: "target drop: insert rows into tov.validation with target = 'drop' to start scoring"))
        // Its first rows: its first model version, on the shared base.
        let first = Self.targets { $0.targets[1].currentInputsServed = false; $0.targets[1].lastVersion = nil }
        #expect(Self.decide(first) == .refresh(target: 2, base: 1, reason: "first model version", requests: []))
    }

    @Test func eachTargetWaitsOutItsOwnDebounce() {
        var policy = TrainerPolicy()
        var s = Self.targets {
            $0.targets[1].settings.zvalDebounceSeconds = 30
            Self.zvalChanged(&$0.targets[0], age: 0)
            Self.zvalChanged(&$0.targets[1], age: 0)
        }
        #expect(Self.activity(policy.decide(s, now: Self.t0)) == TrainerActivity("debouncing", detail: "target default: waiting 5 s for further changes"))
        #expect(policy.decide(s, now: Self.t0 + .seconds(5)) == .refresh(target: 1, base: 1, reason: "Z_val changed", requests: []))
        // 'default' rescores; 'drop' keeps its own 30 s clock, and a new change of 'drop' does not restart it.
        s.targets[0].scoringVersion = 9
        s.targets[1].zval.version += 1
        #expect(Self.activity(policy.decide(s, now: Self.t0 + .seconds(6))) == TrainerActivity("rescoring", detail: "target default: model version 9 is scoring"))
        s.targets[0] = Self.settledTarget(1, "default", settings: s.settings)
        #expect(Self.activity(policy.decide(s, now: Self.t0 + .seconds(7))) == TrainerActivity("debouncing", detail: "target drop: waiting 23 s for further changes"))
        #expect(policy.decide(s, now: Self.t0 + .seconds(30)) == .refresh(target: 2, base: 1, reason: "Z_val changed", requests: []))
        // Served, 'default' starts a new clock for its next change.
        Self.zvalChanged(&s.targets[0], age: 0)
        s.targets[1] = Self.settledTarget(2, "drop", settings: s.settings)
        #expect(Self.activity(policy.decide(s, now: Self.t0 + .seconds(40)))?.detail == "target default: waiting 5 s for further changes")
        // A new term forgets every clock.
        policy.leadershipEnded()
        #expect(Self.activity(policy.decide(s, now: Self.t0 + .seconds(44)))?.detail == "target default: waiting 5 s for further changes")
    }

    /// A change undone before its debounce ended (val_lr_ratio set back) leaves no clock behind: the
    /// next change of that target waits its full window, while another target's clock runs on.
    @Test func aTargetServedAgainForgetsItsClockAndOnlyItsClock() {
        var policy = TrainerPolicy()
        var s = Self.targets { Self.zvalChanged(&$0.targets[0], age: 0); Self.zvalChanged(&$0.targets[1], age: 0)
                               $0.targets[1].settings.zvalDebounceSeconds = 30 }
        #expect(Self.activity(policy.decide(s, now: Self.t0))?.activity == "debouncing")
        s.targets[0].currentInputsServed = true
        #expect(Self.activity(policy.decide(s, now: Self.t0 + .seconds(3)))?.detail == "target drop: waiting 27 s for further changes")
        s.targets[0].currentInputsServed = false
        #expect(Self.activity(policy.decide(s, now: Self.t0 + .seconds(10)))?.detail == "target default: waiting 5 s for further changes")
        #expect(policy.decide(s, now: Self.t0 + .seconds(15)) == .refresh(target: 1, base: 1, reason: "Z_val changed", requests: []))
    }

    @Test func aDisabledTargetTrainsNothing() {
        let s = Self.targets { $0.targets[1].enabled = false; Self.zvalChanged(&$0.targets[1]); $0.targets[1].lastVersion = nil }
        #expect(Self.activity(Self.decide(s)) == TrainerActivity("idle"))
        // Not even when asked for every target: the enabled one serves the request alone.
        var asked = s
        asked.pendingRequests = [.init(id: 4, kind: .refresh)]
        #expect(Self.decide(asked) == .refresh(target: 1, base: 1, reason: "tovd refresh", requests: [4]))
        // Nor when asked for it by name; nor is its diverged version a settings problem.
        asked.pendingRequests = [.init(id: 5, kind: .refresh, target: 2)]
        asked.targets[1].divergedVersion = "diverged: loss is nan"
        #expect(Self.activity(Self.decide(asked)) == TrainerActivity("idle"))
        #expect(TrainerPolicy.settingsProblem(asked) == nil)
        let none = Self.targets { $0.targets[0].enabled = false; $0.targets[1].enabled = false }
        #expect(Self.activity(Self.decide(none)) == TrainerActivity("idle", detail: "no target is enabled"))
    }

    @Test func aRebaseWaitsWhileAnyTargetsVersionRescoresAndStartsNothingElse() {
        var policy = TrainerPolicy()
        var s = Self.targets { $0.settings.selection.seed = 99; $0.targets[1].scoringVersion = 8; Self.zvalChanged(&$0.targets[0]) }
        // 'default' is due too, but a version on the old base would be thrown away by the rebase.
        #expect(Self.activity(policy.decide(s, now: Self.t0)) == TrainerActivity("rescoring", detail: "target drop: model version 8 is scoring"))
        s.targets[1].scoringVersion = nil
        #expect(Self.activity(policy.decide(s, now: Self.t0 + .seconds(1)))?.activity == "debouncing")
        #expect(policy.decide(s, now: Self.t0 + .seconds(6)) == .trainBase(reason: "rebase: seed changed", requests: []))
        // On the new base model every enabled target is due, one after the other.
        s.currentBase!.version = 2
        s.currentBase!.config.seed = 99
        for i in s.targets.indices { s.targets[i].currentInputsServed = false }
        #expect(policy.decide(s, now: Self.t0 + .seconds(7)) == .refresh(target: 1, base: 2, reason: "new base model", requests: []))
        s.targets[0].scoringVersion = 11
        #expect(policy.decide(s, now: Self.t0 + .seconds(8)) == .refresh(target: 2, base: 2, reason: "new base model", requests: []))
    }

    /// `tovd refresh` without --target: every enabled target is refreshed once, and the request is
    /// served by the last of them; with --target only that target is.
    @Test func aRefreshRequestForEveryTargetIsServedWhenTheLastOfThemIsTrained() {
        var s = Self.targets(three: true) { $0.pendingRequests = [.init(id: 5, kind: .refresh)] }
        #expect(Self.decide(s) == .refresh(target: 1, base: 1, reason: "tovd refresh", requests: [], answers: [5]))
        // 'default' answered it (a version trained since the request started) and rescores.
        s.targets[0].answered = [5]
        s.targets[0].scoringVersion = 12
        #expect(Self.decide(s) == .refresh(target: 2, base: 1, reason: "tovd refresh", requests: [], answers: [5]))
        s.targets[1].answered = [5]
        s.targets[0].scoringVersion = nil
        #expect(Self.decide(s) == .refresh(target: 3, base: 1, reason: "tovd refresh", requests: [5]))
        // A target disabled meanwhile owes nothing: 'code' is the last one.
        var disabled = s
        disabled.targets[1].answered = []
        disabled.targets[1].enabled = false
        #expect(Self.decide(disabled) == .refresh(target: 3, base: 1, reason: "tovd refresh", requests: [5]))
        // One target by name: only it refreshes, and it serves its request alone.
        let named = Self.targets(three: true) { $0.pendingRequests = [.init(id: 6, kind: .refresh, target: 2), .init(id: 7, kind: .refresh)] }
        #expect(Self.decide(named) == .refresh(target: 1, base: 1, reason: "tovd refresh", requests: [], answers: [7]))
        var second = named
        second.targets[0].answered = [7]
        second.targets[0].scoringVersion = 13
        #expect(Self.decide(second) == .refresh(target: 2, base: 1, reason: "tovd refresh", requests: [6], answers: [7]))
    }

    /// A target whose refresh cannot start (every Z_val row rejected: the trainer finds nothing to
    /// train, and the snapshot still shows it due) must not keep the others waiting forever.
    @Test func dueTargetsTakeTurnsSoAnUntrainableOneStarvesNoOther() {
        var policy = TrainerPolicy()
        let s = Self.targets(three: true) { for i in $0.targets.indices { Self.zvalChanged(&$0.targets[i]) } }
        let order = (0..<4).map { second -> Int? in
            if case .refresh(let target, _, _, _, _) = policy.decide(s, now: Self.t0 + .seconds(second)) { return target }
            return nil
        }
        #expect(order == [1, 2, 3, 1])
        // Waiting, status shows the first target by id, wherever the turn is.
        let debouncing = Self.targets(three: true) { for i in $0.targets.indices { Self.zvalChanged(&$0.targets[i], age: 0) } }
        #expect(Self.activity(policy.decide(debouncing, now: Self.t0 + .seconds(4)))?.detail == "target default: waiting 5 s for further changes")
        // A new term starts from the first target again.
        policy.leadershipEnded()
        #expect(policy.decide(s, now: Self.t0 + .seconds(5)) == .refresh(target: 1, base: 1, reason: "Z_val changed", requests: []))
    }

    @Test func aDivergedTargetIsASettingsProblemNamedAfterIt() {
        let s = Self.targets { Self.zvalChanged(&$0.targets[1]); $0.targets[1].divergedVersion = "diverged: θ_val epoch 1 loss is nan" }
        #expect(TrainerPolicy.settingsProblem(s) == "target drop: diverged: θ_val epoch 1 loss is nan")
        let blocked = Self.activity(Self.decide(s))
        #expect(blocked == TrainerActivity("blocked", detail: "target drop: diverged: θ_val epoch 1 loss is nan; change lr, val_lr_ratio or Z_val to retry"))
    }

    // MARK: - The Z_val signal, measured after the switch (issue 25)

    @Test func theLiveVersionsSignalIsMeasuredWhenItsTargetHasNothingElseDue() {
        #expect(Self.decide(Self.settled { $0.targets[0].signalPending = 5 }) == .measureSignal(target: 1, version: 5))
        // A refresh that is due comes first: its version replaces this one. (The store reports no
        // pending signal for a version whose Z_val changed; a method change leaves it pending.)
        let methodChanged = Self.settled {
            $0.targets[0].signalPending = 5; $0.currentInputsServed = false; $0.targets[0].lastVersion?.method = "B"
        }
        #expect(Self.decide(methodChanged) == .refresh(target: 1, base: 1, reason: "method changed", requests: []))
        let forced = Self.settled { $0.targets[0].signalPending = 5; $0.pendingRequests = [.init(id: 9, kind: .refresh, target: 1)] }
        #expect(Self.decide(forced) == .refresh(target: 1, base: 1, reason: "tovd refresh", requests: [9]))
        // So does a rebase, and its debounce: no measurement meanwhile.
        let rebase = Self.settled { $0.targets[0].signalPending = 5; $0.settings.uSize = 200 }
        var policy = TrainerPolicy()
        #expect(Self.activity(policy.decide(rebase, now: Self.t0))?.activity == "debouncing")
        #expect(policy.decide(rebase, now: Self.t0 + .seconds(10)) == .trainBase(reason: "rebase: u_size changed", requests: []))
    }

    @Test func aSignalIsMeasuredWhileAnotherTargetsVersionRescores() {
        let s = Self.targets { $0.targets[0].scoringVersion = 7; $0.targets[1].signalPending = 6 }
        #expect(Self.decide(s) == .measureSignal(target: 2, version: 6))
        // Any target's refresh comes first, and the measurement does not take that target's turn.
        var policy = TrainerPolicy()
        let due = Self.targets { $0.targets[0].signalPending = 5; Self.zvalChanged(&$0.targets[1]) }
        #expect(policy.decide(due, now: Self.t0) == .refresh(target: 2, base: 1, reason: "Z_val changed", requests: []))
        let both = Self.targets(three: true) { $0.targets[1].signalPending = 6; $0.targets[2].signalPending = 7 }
        #expect(policy.decide(both, now: Self.t0) == .measureSignal(target: 3, version: 7))
        #expect(policy.decide(both, now: Self.t0) == .measureSignal(target: 3, version: 7))
        // Not for a disabled target.
        #expect(Self.activity(Self.decide(Self.targets { $0.targets[1].signalPending = 6; $0.targets[1].enabled = false }))?.activity == "idle")
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
