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
    /// Train θ_val^1..L on `base` and rescore; `requests` are served when the version is trained.
    case refresh(base: Int, reason: String, requests: [Int64])

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

/// The trainer's rules, without a database. One version at a time is trained or rescored; whatever
/// changes meanwhile becomes exactly one next version, so a Z_val change is in tov.selected within
/// two refresh durations plus the debounce, at any rate of change.
///
/// Its one piece of memory is the debounce clock: when the trainer first saw the change it is waiting
/// out. The clock counts from the first change seen, not the last, so a Z_val that changes every
/// second still refreshes; a new leadership term starts it anew.
struct TrainerPolicy: Sendable {
    /// How long a wait lasts before the trainer looks again (it is also woken by NOTIFY).
    static let recheck: Duration = .seconds(1)

    private var changeSeen: (key: String, at: ContinuousClock.Instant)?

    init() {}

    mutating func leadershipEnded() { changeSeen = nil }

    mutating func decide(_ s: TrainerSnapshot, now: ContinuousClock.Instant) -> TrainerAction {
        // Repairs first: a checkpoint nobody can load must not leave rows waiting for it forever.
        let repairs = s.broken.compactMap { broken -> TrainerAction.Repair? in
            switch broken.owner {
            case .base(let base): return .failBase(base, problem: broken.problem)
            case .version(let version, scoring: true): return .failVersion(version, problem: broken.problem)
            // A complete version keeps serving the selection until its replacement switches in; its
            // replacement is due because `currentInputsServed` does not count it.
            case .version(_, scoring: false): return nil
            }
        }
        if !repairs.isEmpty { return .repair(repairs) }

        if let busy = s.scoringVersion {
            return .wait(TrainerActivity("rescoring", detail: "model version \(busy) is scoring"), recheck: Self.recheck)
        }
        let rebaseRequests = s.pendingRequests.filter { $0.kind == .rebase }.map(\.id)
        let refreshRequests = s.pendingRequests.filter { $0.kind == .refresh }.map(\.id)

        guard let base = s.currentBase else {
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
            } else {
                // One clock for every rebase reason: the growth reason's counts change with each insert.
                if let wait = debounce(key: "rebase", ageSeconds: nil, window: s.settings.zvalDebounceSeconds, now: now) {
                    return wait
                }
                return .trainBase(reason: "rebase: \(rebase)", requests: rebaseRequests)
            }
        }

        guard s.zval.rows > 0 else {
            return .wait(blockedRebase ?? TrainerActivity("waiting for Z_val", detail: "insert rows into tov.validation to start scoring"),
                         recheck: Self.recheck)
        }
        let forced = !refreshRequests.isEmpty
        if s.currentInputsServed && !forced {
            changeSeen = nil
            return .wait(blockedRebase ?? TrainerActivity("idle"), recheck: Self.recheck)
        }
        if let diverged = s.divergedVersion, !forced {
            // Retraining on the same inputs would diverge again, every tick.
            return .wait(TrainerActivity("blocked", detail: "\(diverged); change lr, val_lr_ratio or Z_val to retry"),
                         recheck: Self.recheck)
        }
        let reason = Self.refreshReason(s, base: base.version, forced: forced && s.currentInputsServed)
        // Not keyed on the Z_val version: a Z_val that keeps changing must not restart the clock.
        let key = "refresh:\(base.version)/\(s.settings.selection.method.rawValue)/\(s.settings.valLearningRateRatio)"
        if reason == "Z_val changed",
           let wait = debounce(key: key, ageSeconds: s.zval.ageSeconds, window: s.settings.zvalDebounceSeconds, now: now) {
            return wait
        }
        changeSeen = nil
        return .refresh(base: base.version, reason: reason, requests: refreshRequests)
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
        if !s.currentInputsServed, let diverged = s.divergedVersion { return diverged }
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

    static func refreshReason(_ s: TrainerSnapshot, base: Int, forced: Bool) -> String {
        if forced { return "tovd refresh" }
        for broken in s.broken {
            if case .version(let version, scoring: false) = broken.owner { return "checkpoint of model version \(version) unreadable" }
        }
        guard let last = s.lastVersion else { return "first model version" }
        if last.baseVersion != base { return "new base model" }
        if last.zvalVersion != s.zval.version { return "Z_val changed" }
        if last.method != s.settings.selection.method.rawValue { return "method changed" }
        return "val_lr_ratio changed"
    }

    /// Waits out `window` seconds, counted from the first time this change was seen (or the quiet time
    /// since the last Z_val edit, whichever ends first).
    private mutating func debounce(key: String, ageSeconds: Double?, window: Double, now: ContinuousClock.Instant) -> TrainerAction? {
        if changeSeen?.key != key { changeSeen = (key, now) }
        let seen = (now - changeSeen!.at).seconds
        if seen >= window || (ageSeconds ?? 0) >= window { return nil }
        let left = Int((window - max(seen, ageSeconds ?? 0)).rounded(.up))
        return .wait(TrainerActivity("debouncing", detail: "waiting \(left) s for further changes"), recheck: Self.recheck)
    }
}
