/// What the trainer does next, as a value (postgres-nio's state machines return actions the same way):
/// ``TrainerPolicy/decide(_:now:)`` holds every rule of docs/operations.md "Refresh and rebase", and the
/// trainer service only carries the action out.
enum TrainerAction: Equatable, Sendable {
    /// Nothing to train: say so in tov.leader_activity and decide again after `recheck` (or when woken).
    case wait(TrainerActivity, recheck: Duration)
    /// Fail what workers cannot load, so the next decision trains it again. The last good selection
    /// stays in tov.selected until then.
    case repair([Repair])
    /// Draw U and train θ0 and θ_bas^1..L; `requests` are served when the base model completes.
    case trainBase(reason: String, requests: [Int64])
    /// Train θ_val^1..L of target `target` on `base` and rescore; `requests` are served when the
    /// version is trained. `answers` are every-target refresh requests that this version answers
    /// for its target while other enabled targets still owe them: marked started, left pending.
    case refresh(target: Int, base: Int, reason: String, requests: [Int64], answers: [Int64] = [])
    /// Measure the Z_val signal of target `target`'s live version `version` (docs/selection.md): after
    /// the switch, because the selection does not read it and rescoring should not wait for it.
    case measureSignal(target: Int, version: Int)

    enum Repair: Equatable, Sendable {
        /// A version being rescored whose θ_val cannot be loaded: a new one replaces it.
        case failVersion(Int, problem: String)
        /// A base model whose θ0 or θ_bas cannot be loaded: it and its versions in flight fail, and the
        /// next decision rebases.
        case failBase(Int, problem: String)
    }
}

/// What tov.leader_activity shows while the trainer waits.
struct TrainerActivity: Equatable, Sendable {
    var activity: String
    var detail: String?
    var done: Int?
    var total: Int?
    var unit: String?

    init(_ activity: String, detail: String? = nil, done: Int? = nil, total: Int? = nil, unit: String? = nil) {
        self.activity = activity
        self.detail = detail
        self.done = done
        self.total = total
        self.unit = unit
    }
}

/// The trainer's rules, without a database. Per target, one version at a time is trained or
/// rescored; whatever changes meanwhile becomes exactly one next version of that target, so a change
/// of a target's Z_val is in its selection within two refresh durations plus the debounce, at any
/// rate of change (and, with several targets, the other targets' refreshes queued before it on the
/// one serial trainer).
///
/// The base model is global: repairs, the bootstrap and rebases come first, and a rebase waits
/// until no version of any target is scoring (and starts nothing else meanwhile, so refreshes cannot
/// starve it). Then the enabled targets in id order, counting from the one after the target last
/// refreshed (wrapping round): the first one that is due is refreshed; a target that waits (its
/// version rescoring, no Z_val, debouncing, diverged) does not hold up the others, nor does one whose
/// refresh cannot start (every Z_val row rejected: the trainer finds nothing to train and the next
/// decision moves on).
///
/// A target whose live version serves its current inputs and has no Z_val signal yet is due for that
/// measurement instead of idling: the signal comes after the switch, so a bootstrap's or refresh's
/// selection does not wait for it. Any target's refresh that is due comes first (a selection waits
/// for it; nothing waits for a signal), and a measurement does not count as the target's turn.
///
/// Refresh requests: one with a target forces that target's refresh and is served by it. One for
/// every target (tovd refresh without --target, target_id NULL) forces a refresh of each enabled
/// target that has not answered it yet, and is served by the refresh after which no other enabled
/// target owes it, i.e. when the last of them is trained (a target disabled meanwhile owes nothing).
///
/// Its memory is the debounce clocks, one for the rebase and one per target (when the trainer first
/// saw the change it is waiting out), and the target it refreshed last. A clock counts from the first
/// change seen, not the last, so a Z_val that changes every second still refreshes; a new leadership
/// term starts them anew.
struct TrainerPolicy: Sendable {
    /// How long a wait lasts before the trainer looks again (it is also woken by NOTIFY).
    static let recheck: Duration = .seconds(1)

    enum DebounceClock: Hashable, Sendable {
        case rebase
        case target(Int)
    }

    private var changeSeen: [DebounceClock: (key: String, at: ContinuousClock.Instant)] = [:]
    private var refreshedLast: Int?

    init() {}

    mutating func leadershipEnded() {
        changeSeen = [:]
        refreshedLast = nil
    }

    mutating func decide(_ s: TrainerSnapshot, now: ContinuousClock.Instant) -> TrainerAction {
        // Repairs first: a checkpoint nobody can load must not leave rows waiting for it forever.
        let repairs = s.broken.compactMap { broken -> TrainerAction.Repair? in
            switch broken.owner {
            case .base(let base): return .failBase(base, problem: broken.problem)
            case .version(let version, _, scoring: true): return .failVersion(version, problem: broken.problem)
            // A complete version keeps serving the selection until its replacement switches in; its
            // replacement is due because `currentInputsServed` does not count it.
            case .version(_, _, scoring: false): return nil
            }
        }
        if !repairs.isEmpty { return .repair(repairs) }

        // Any target's version being rescored, disabled ones included: a new base model waits for it.
        let rescoring = s.targets.first { $0.scoringVersion != nil }.map { target in
            TrainerActivity("rescoring", detail: Self.labelled("model version \(target.scoringVersion!) is scoring", target, in: s))
        }
        let rebaseRequests = s.pendingRequests.filter { $0.kind == .rebase }.map(\.id)

        guard let base = s.currentBase else {
            if let rescoring { return .wait(rescoring, recheck: Self.recheck) }
            if let blocked = Self.rebaseBlocker(s) { return .wait(blocked, recheck: Self.recheck) }
            let reason = s.lastBaseFailure.flatMap { $0.hasPrefix("checkpoint unreadable") ? "rebase: \($0)" : nil } ?? "bootstrap"
            return .trainBase(reason: reason, requests: rebaseRequests)
        }

        // A rebase that cannot start (too few rows, a surrogate too large, a trajectory that diverged
        // under these settings) must not hold up refreshes of the base model in use.
        var blockedRebase: TrainerActivity?
        if let rebase = Self.rebaseReason(stored: base.config, storedUSize: base.uSize, poolAtDraw: base.poolRowsAtDraw,
                                          ready: s.readyRows, settings: s.settings, requested: !rebaseRequests.isEmpty) {
            if let blocked = Self.rebaseBlocker(s) {
                blockedRebase = blocked
                blockedRebase!.detail = "rebase (\(rebase)) waits: \(blocked.detail ?? blocked.activity)"
                changeSeen[.rebase] = nil
            } else if let rescoring {
                // Every target's refresh on the old base would be thrown away by the rebase.
                return .wait(rescoring, recheck: Self.recheck)
            } else {
                // One clock for every rebase reason: the growth reason's counts change with each insert.
                if let wait = debounce(.rebase, key: "rebase", ageSeconds: nil, window: s.settings.zvalDebounceSeconds, now: now) {
                    return wait
                }
                changeSeen[.rebase] = nil
                return .trainBase(reason: "rebase: \(rebase)", requests: rebaseRequests)
            }
        } else {
            changeSeen[.rebase] = nil
        }

        let enabled = s.targets.filter(\.enabled)
        // A dropped or disabled target's clock goes with it: K clocks at most.
        changeSeen = changeSeen.filter { clock, _ in
            if case .target(let id) = clock { return enabled.contains { $0.id == id } }
            return true
        }
        let next = enabled.firstIndex { $0.id > (refreshedLast ?? .min) } ?? 0
        var waits: [(target: TrainerSnapshot.Target, activity: TrainerActivity)] = []
        var signal: TrainerAction?
        for target in enabled[next...] + enabled[..<next] {
            let action = decide(target, base: base.version, in: s, now: now)
            switch action {
            case .wait(let activity, _): waits.append((target, activity))
            case .measureSignal: signal = signal ?? action
            default:
                refreshedLast = target.id
                return action
            }
        }
        // Only when no target is due for a refresh: a selection waits for a refresh, nothing for a signal.
        if let signal { return signal }
        waits.sort { $0.target.id < $1.target.id }
        return .wait(Self.summary(waits, blockedRebase: blockedRebase, in: s), recheck: Self.recheck)
    }

    /// One enabled target on the current base: `.refresh` when it is due, else `.wait` with why.
    private mutating func decide(_ t: TrainerSnapshot.Target, base: Int, in s: TrainerSnapshot,
                                 now: ContinuousClock.Instant) -> TrainerAction {
        if let busy = t.scoringVersion {
            return .wait(TrainerActivity("rescoring", detail: "model version \(busy) is scoring"), recheck: Self.recheck)
        }
        guard t.zval.rows > 0 else {
            let insert = s.targets.count > 1 ? "insert rows into tov.validation with target = '\(t.name)'" : "insert rows into tov.validation"
            return .wait(TrainerActivity("waiting for Z_val", detail: "\(insert) to start scoring"), recheck: Self.recheck)
        }
        let owed = s.pendingRequests.filter { Self.owes(t, $0) }
        let forced = !owed.isEmpty
        if t.currentInputsServed && !forced {
            changeSeen[.target(t.id)] = nil
            if let version = t.signalPending { return .measureSignal(target: t.id, version: version) }
            return .wait(TrainerActivity("idle"), recheck: Self.recheck)
        }
        if let diverged = t.divergedVersion, !forced {
            // Retraining on the same inputs would diverge again, every tick.
            return .wait(TrainerActivity("blocked", detail: "\(diverged); change lr, val_lr_ratio or Z_val to retry"),
                         recheck: Self.recheck)
        }
        let reason = Self.refreshReason(t, broken: s.broken, base: base, forced: forced && t.currentInputsServed)
        // Not keyed on the Z_val version: a Z_val that keeps changing must not restart the clock.
        let key = "refresh:\(base)/\(t.settings.selection.method.rawValue)/\(t.settings.valLearningRateRatio)"
        if reason == "Z_val changed",
           let wait = debounce(.target(t.id), key: key, ageSeconds: t.zval.ageSeconds, window: t.settings.zvalDebounceSeconds, now: now) {
            return wait
        }
        changeSeen[.target(t.id)] = nil
        // Served now: the target's own requests, and every-target ones no other enabled target owes.
        let others = s.targets.filter { $0.enabled && $0.id != t.id }
        let serves = s.pendingRequests.filter { r in
            r.kind == .refresh && (r.target == t.id || (r.target == nil && !others.contains { Self.owes($0, r) }))
        }.map(\.id)
        let answers = owed.map(\.id).filter { !serves.contains($0) }
        return .refresh(target: t.id, base: base, reason: reason, requests: serves, answers: answers)
    }

    /// Whether `request` forces a refresh of target `t`: a refresh request for it, or for every target
    /// and not yet answered by it.
    static func owes(_ t: TrainerSnapshot.Target, _ request: TrainerSnapshot.Request) -> Bool {
        guard request.kind == .refresh else { return false }
        if let target = request.target { return target == t.id }
        return !t.answered.contains(request.id)
    }

    /// What the trainer shows while no target is due. One target: its wait, as a single-target
    /// pipeline always showed it. Several: the wait that says most about what the leader does
    /// (rescoring, then debouncing, blocked, waiting for Z_val, idle; the first target on a tie),
    /// with the target's name in the detail; "idle" only when every target is. A rebase that waits
    /// is shown over targets that are idle or wait for Z_val.
    static func summary(_ waits: [(target: TrainerSnapshot.Target, activity: TrainerActivity)], blockedRebase: TrainerActivity?,
                        in s: TrainerSnapshot) -> TrainerActivity {
        let order = ["rescoring", "debouncing", "blocked", "waiting for Z_val", "idle"]
        let rank = { (a: TrainerActivity) in order.firstIndex(of: a.activity) ?? order.count }
        guard let shown = waits.min(by: { rank($0.activity) < rank($1.activity) }) else {
            return blockedRebase ?? TrainerActivity("idle", detail: s.targets.isEmpty ? "no target in tov.targets" : "no target is enabled")
        }
        if rank(shown.activity) >= rank(TrainerActivity("waiting for Z_val")), let blockedRebase { return blockedRebase }
        if shown.activity.activity == "idle" { return shown.activity }
        var activity = shown.activity
        if s.targets.count > 1 { activity.detail = labelled(activity.detail ?? activity.activity, shown.target, in: s) }
        return activity
    }

    /// `text` about target `t`, with its name when the pool has several targets (a single-target
    /// pipeline reads as it always did).
    static func labelled(_ text: String, _ t: TrainerSnapshot.Target, in s: TrainerSnapshot) -> String {
        s.targets.count > 1 ? "target \(t.name): \(text)" : text
    }

    // MARK: - Rules

    /// A setting the database accepts but the trainer cannot use as it is, whatever the trainer does
    /// meanwhile (a blocked rebase still lets refreshes run): shown in tov.status.settings_error and
    /// tovd_settings_error until the settings change.
    static func settingsProblem(_ s: TrainerSnapshot) -> String? {
        if let problem = s.memoryProblem { return problem }
        if let problem = theta0Problem(s) { return problem }
        let rebaseWanted = s.currentBase.map {
            rebaseReason(stored: $0.config, storedUSize: $0.uSize, poolAtDraw: $0.poolRowsAtDraw, ready: s.readyRows,
                         settings: s.settings, requested: false) != nil
        } ?? true
        if rebaseWanted, let diverged = s.divergedBase { return diverged }
        if let t = s.targets.first(where: { $0.enabled && !$0.currentInputsServed && $0.divergedVersion != nil }) {
            return labelled(t.divergedVersion!, t, in: s)
        }
        return nil
    }

    /// Why the newest base model no longer fits the settings, or nil.
    static func rebaseReason(stored: BaseModelConfig, storedUSize: Int, poolAtDraw: Int, ready: Int,
                             settings: Settings, requested: Bool) -> String? {
        let wanted = BaseModelConfig(settings: settings).with(valLearningRateRatio: stored.valLearningRateRatio)
        var changed: [String] = []
        if wanted.surrogate != stored.surrogate { changed.append("surrogate") }
        if settings.uSize != storedUSize { changed.append("u_size") }
        if wanted.epochs != stored.epochs { changed.append("epochs") }
        if wanted.learningRate != stored.learningRate { changed.append("lr") }
        // An imported θ0 is not pretrained here: pretrain_steps means nothing to its base models.
        if wanted.theta0 == nil, stored.theta0 == nil, wanted.pretrainSteps != stored.pretrainSteps { changed.append("pretrain_steps") }
        if wanted.seed != stored.seed { changed.append("seed") }
        if wanted.theta0 != stored.theta0 { changed.append("theta0") }
        if !changed.isEmpty { return changed.joined(separator: ", ") + " changed" }
        if requested { return "tovd rebase" }
        let growth = settings.rebaseGrowth
        if growth > 0, poolAtDraw > 0, Double(ready) >= growth * Double(poolAtDraw) {
            return "pool grew from \(poolAtDraw) to \(ready) rows (rebase_growth \(growth))"
        }
        return nil
    }

    /// Why a base model cannot be trained now, or nil.
    static func rebaseBlocker(_ s: TrainerSnapshot) -> TrainerActivity? {
        if let problem = s.memoryProblem {
            return TrainerActivity("blocked", detail: problem)
        }
        if let problem = theta0Problem(s) {
            return TrainerActivity("blocked", detail: problem)
        }
        if let diverged = s.divergedBase {
            return TrainerActivity("blocked", detail: "\(diverged); change the settings to retry")
        }
        return waitForPool(ready: s.readyRows, validating: s.validatingRows, settings: s.settings)
    }

    /// Why the θ0 the `theta0` setting names cannot start a base model, or nil (also nil for the
    /// bootstrap). The shape must be the `surrogate` setting's: that setting stays the one statement
    /// of the model every base trains and scores with (memory check, rebase rules), and an import
    /// never changes the model size behind it (docs/operations.md, "Start from your own θ0").
    static func theta0Problem(_ s: TrainerSnapshot) -> String? {
        guard let name = s.settings.theta0 else { return nil }
        guard let stored = s.theta0, stored.name == name else {
            return "theta0 = \"\(name)\": no θ0 of that name is imported (`tovd base list` shows them); import it with "
                + "`tovd base import FILE --name \(name)`, or set theta0 to null for the bootstrap θ0"
        }
        guard let shape = stored.shape else {
            return "theta0 = \"\(name)\": its stored model config cannot be read; import the checkpoint again under a new name"
        }
        let wanted = s.settings.surrogate
        guard shape == wanted else {
            return "theta0 = \"\(name)\" is a \(shape.summary) model but surrogate asks for \(wanted.summary); set surrogate to "
                + "\(shape.json) to start from it, or import a θ0 of the surrogate's shape"
        }
        return nil
    }

    /// A pool too small for U, or a validation backlog too large for a sample of ready rows to stand
    /// for the pool (≤ 5 % of it): wait.
    static func waitForPool(ready: Int, validating: Int, settings: Settings) -> TrainerActivity? {
        if ready < settings.uSize {
            return TrainerActivity("waiting for rows", detail: "needs |U| = \(settings.uSize) validated rows to draw the base subset",
                                   done: ready, total: settings.uSize, unit: "rows")
        }
        if !backlogAllowsSamplingU(ready: ready, validating: validating) {
            return TrainerActivity("waiting for rows", detail: "validating the backlog before drawing U (\(validating) rows left)",
                                   done: ready, total: ready + validating, unit: "rows")
        }
        return nil
    }

    /// Whether the validation backlog is small enough (≤ 5 % of ready + backlog) for a sample of
    /// ready rows to stand for the whole pool: with a backlog the first validated rows are the
    /// oldest, often one source loaded first.
    static func backlogAllowsSamplingU(ready: Int, validating: Int) -> Bool {
        validating * 20 <= ready + validating
    }

    /// Why target `t` is due for a new version on `base`.
    static func refreshReason(_ t: TrainerSnapshot.Target, broken: [TrainerSnapshot.BrokenCheckpoint], base: Int, forced: Bool) -> String {
        if forced { return "tovd refresh" }
        for broken in broken {
            if case .version(let version, target: t.id, scoring: false) = broken.owner { return "checkpoint of model version \(version) unreadable" }
        }
        guard let last = t.lastVersion else { return "first model version" }
        if last.baseVersion != base { return "new base model" }
        if last.zvalVersion != t.zval.version { return "Z_val changed" }
        if last.method != t.settings.selection.method.rawValue { return "method changed" }
        return "val_lr_ratio changed"
    }

    /// Waits out `window` seconds on `clock`, counted from the first time this change was seen (or the
    /// quiet time since the last Z_val edit, whichever ends first).
    private mutating func debounce(_ clock: DebounceClock, key: String, ageSeconds: Double?, window: Double,
                                   now: ContinuousClock.Instant) -> TrainerAction? {
        if changeSeen[clock]?.key != key { changeSeen[clock] = (key, now) }
        let seen = (now - changeSeen[clock]!.at).seconds
        if seen >= window || (ageSeconds ?? 0) >= window { return nil }
        let left = Int((window - max(seen, ageSeconds ?? 0)).rounded(.up))
        return .wait(TrainerActivity("debouncing", detail: "waiting \(left) s for further changes"), recheck: Self.recheck)
    }
}
