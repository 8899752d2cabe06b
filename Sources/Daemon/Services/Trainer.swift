import Foundation
import Logging
import PQ
import Selection
import Surrogate

/// The leader's trainer: decides what model to train next and trains it, one job at a time, in its
/// own task. Three kinds of work, each ending in a model version that workers rescore and the
/// selection keeper switches to atomically (the old selection stays readable until then):
///
/// - **bootstrap**: no base model yet; draws U, pretrains θ0, trains θ_bas^1..L.
/// - **rebase**: a setting that shapes the base trajectory changed, the pool grew by `rebase_growth`
///   since U was drawn, or `tovd rebase` asked; trains a new base model the same way, then a version on it.
/// - **refresh**: Z_val, `method` or `val_lr_ratio` changed, or `tovd refresh` asked; trains θ_val^1..L.
///
/// A refresh in flight is never thrown away: while a version trains or rescores, further changes
/// wait, and whatever changed meanwhile becomes exactly one next version once the switch is done.
/// So a Z_val change is reflected in tov.selected within two refresh durations (train + rescore)
/// plus the debounce, at any rate of change, and the last version is trained on the latest Z_val.
/// The debounce counts from the first change the trainer saw, not the last, so a Z_val that
/// changes every second still refreshes.
final class Trainer: LeaderJob, @unchecked Sendable {
    let name = "trainer"
    let instance: String
    let settings: SettingsCache
    let workers: WakeupSignal
    let leadership: Leadership
    let metrics: DaemonMetrics
    let logger: Logger
    let stopFlag: StopFlag
    /// When the trainer first saw that the current model no longer matches Z_val/settings (the
    /// debounce clock). Per leadership term: a new leader starts the clock anew.
    private var changeSeenAt: (key: String, at: ContinuousClock.Instant)?
    /// Test-only: milliseconds to stall θ_val training, standing in for a large surrogate
    /// (environment TOVD_FAULT_TRAIN_DELAY_MS; never set in production).
    private let injectedTrainDelay: Duration? = ProcessInfo.processInfo.environment["TOVD_FAULT_TRAIN_DELAY_MS"]
        .flatMap(Int.init).map { .milliseconds($0) }
    /// Test-only: milliseconds each training phase lasts at least, so a test can observe every phase
    /// of a tiny surrogate's bootstrap (environment TOVD_FAULT_PHASE_DELAY_MS).
    private let injectedPhaseDelay: UInt32? = ProcessInfo.processInfo.environment["TOVD_FAULT_PHASE_DELAY_MS"]
        .flatMap(UInt32.init)

    init(instance: String, settings: SettingsCache, workers: WakeupSignal, leadership: Leadership,
         metrics: DaemonMetrics, stopFlag: StopFlag, logger: Logger) {
        self.instance = instance
        self.settings = settings
        self.workers = workers
        self.leadership = leadership
        self.metrics = metrics
        self.stopFlag = stopFlag
        self.logger = logger
    }

    func leadershipEnded() { changeSeenAt = nil }

    /// What the trainer should do next, decided from the database alone.
    enum Decision: Equatable {
        case wait(activity: String, detail: String?, done: Int?, total: Int?, unit: String?)
        case trainBase(reason: String)
        case refresh(base: Int, reason: String, requestID: Int64?)
    }

    func step(fence: LeaderFence, on connection: Connection) async throws -> Duration {
        let current = try await settings.current(on: connection)
        try await failInterruptedTraining(fence: fence, on: connection)
        try await failUnloadableCheckpoints(fence: fence, on: connection)
        let decision = try await decide(settings: current, on: connection)
        let activity = ActivityWriter(fence: fence, connection: connection)
        switch decision {
        case .wait(let what, let detail, let done, let total, let unit):
            try await activity.set(what, reason: nil, detail: detail, done: done, total: total, unit: unit)
            return .seconds(1)
        case .trainBase(let reason):
            try await trainBaseModel(reason: reason, settings: current, fence: fence, activity: activity, on: connection)
            return .zero
        case .refresh(let base, let reason, let requestID):
            try await refresh(base: base, reason: reason, requestID: requestID, settings: current, fence: fence,
                              activity: activity, on: connection)
            return .zero
        }
    }

    // MARK: - Deciding

    func decide(settings: Settings, on connection: Connection) async throws -> Decision {
        // One version at a time in training or rescoring (a unique index says so): changes made
        // meanwhile coalesce into the next one.
        // (Nothing is in `training` here: failInterruptedTraining ran first.)
        if let busy = try await connection.query("SELECT model_version FROM tov.model_versions WHERE status = 'scoring'").first {
            return .wait(activity: "rescoring", detail: "model version \(try busy.get(Int32.self, 0)) is scoring",
                         done: nil, total: nil, unit: nil)
        }
        let counts = try await connection.query(
            "SELECT (SELECT count(*) FROM tov.ready), (SELECT count(*) FROM tov.jobs WHERE model_version = 0)").first!
        let ready = Int(try counts.get(Int64.self, 0))
        let validating = Int(try counts.get(Int64.self, 1))
        let requests = try await connection.query(
            "SELECT id, kind, requested_at::text FROM tov.training_requests WHERE started_at IS NULL ORDER BY id")
        let rebaseRequested = try requests.contains { try $0.get(String.self, 1) == "rebase" }
        let refreshRequest = try requests.first { try $0.get(String.self, 1) == "refresh" }.map { try $0.get(Int64.self, 0) }

        guard let base = try await connection.query("""
            SELECT base_version, u_size, config::text, coalesce(pool_rows_at_draw, 0) FROM tov.base_models
            WHERE status = 'complete' ORDER BY base_version DESC LIMIT 1
            """).first else {
            if let blocked = try await divergedBefore(settings: settings, on: connection) { return blocked }
            if let wait = Self.waitForPool(ready: ready, validating: validating, settings: settings) { return wait }
            let earlier = try await connection.query("SELECT reason FROM tov.base_models ORDER BY base_version DESC LIMIT 1").first
            if let earlier, !earlier.isNull(0), let why = try? earlier.get(String.self, 0), why.hasPrefix("checkpoint unreadable") {
                return .trainBase(reason: "rebase: \(why)")
            }
            return .trainBase(reason: "bootstrap")
        }
        let baseVersion = Int(try base.get(Int32.self, 0))
        let stored = try BaseModelConfig(json: try base.get(String.self, 2))
        let rebaseReason = Self.rebaseReason(
            stored: stored, storedUSize: Int(try base.get(Int32.self, 1)), poolAtDraw: Int(try base.get(Int64.self, 3)),
            ready: ready, settings: settings, requested: rebaseRequested)
        if let rebaseReason {
            if let blocked = try await divergedBefore(settings: settings, on: connection) { return blocked }
            if let wait = Self.waitForPool(ready: ready, validating: validating, settings: settings) { return wait }
            // One clock for every rebase reason: the growth reason's counts change with each insert.
            if let wait = debounce(key: "rebase", ageSeconds: nil, settings: settings) { return wait }
            return .trainBase(reason: "rebase: \(rebaseReason)")
        }

        let zval = try await connection.query(Queries.zvalVersionGet).first!
        let zvalVersion = try zval.get(Int64.self, 0)
        let zvalAge = try zval.get(Double.self, 1)
        guard try zval.get(Int64.self, 2) > 0 else {
            return .wait(activity: "waiting for Z_val", detail: "insert rows into tov.validation to start scoring",
                         done: nil, total: nil, unit: nil)
        }
        let method = settings.selection.method.rawValue
        let existing = try await connection.query("""
            SELECT model_version FROM tov.model_versions
            WHERE base_version = $1 AND zval_version = $2 AND method = $3 AND val_lr_ratio = $4::float8
              AND status IN ('scoring', 'complete')
            """, [baseVersion, zvalVersion, method, settings.valLearningRateRatio])
        if !existing.isEmpty && refreshRequest == nil {
            changeSeenAt = nil
            return .wait(activity: "idle", detail: nil, done: nil, total: nil, unit: nil)
        }
        let reason = try await refreshReason(base: baseVersion, zvalVersion: zvalVersion, settings: settings,
                                             forced: refreshRequest != nil && !existing.isEmpty, on: connection)
        // Not keyed on the Z_val version: a Z_val that keeps changing must not restart the clock.
        let key = "refresh:\(baseVersion)/\(method)/\(settings.valLearningRateRatio)"
        if reason.hasPrefix("Z_val"), let wait = debounce(key: key, ageSeconds: zvalAge, settings: settings) { return wait }
        changeSeenAt = nil
        return .refresh(base: baseVersion, reason: reason, requestID: refreshRequest)
    }

    /// Why the newest base model no longer fits, or nil.
    static func rebaseReason(stored: BaseModelConfig, storedUSize: Int, poolAtDraw: Int, ready: Int,
                             settings: Settings, requested: Bool) -> String? {
        let wanted = BaseModelConfig(settings: settings).with(valLearningRateRatio: stored.valLearningRateRatio)
        var changed: [String] = []
        if wanted.surrogate != stored.surrogate { changed.append("surrogate") }
        if settings.uSize != storedUSize { changed.append("u_size") }
        if wanted.epochs != stored.epochs { changed.append("epochs") }
        if wanted.learningRate != stored.learningRate { changed.append("lr") }
        if wanted.pretrainSteps != stored.pretrainSteps { changed.append("pretrain_steps") }
        if wanted.seed != stored.seed { changed.append("seed") }
        if !changed.isEmpty { return changed.joined(separator: ", ") + " changed" }
        if requested { return "tovd rebase" }
        let growth = settings.rebaseGrowth
        if growth > 0, poolAtDraw > 0, Double(ready) >= growth * Double(poolAtDraw) {
            return "pool grew from \(poolAtDraw) to \(ready) rows (rebase_growth \(growth))"
        }
        return nil
    }

    /// A pool too small for U, or a validation backlog too large for a sample of ready rows to
    /// stand for the pool (≤ 5 % of it): wait.
    static func waitForPool(ready: Int, validating: Int, settings: Settings) -> Decision? {
        if ready < settings.uSize {
            return .wait(activity: "waiting for rows", detail: "needs |U| = \(settings.uSize) validated rows to draw the base subset",
                         done: ready, total: settings.uSize, unit: "rows")
        }
        if !backlogAllowsSamplingU(ready: ready, validating: validating) {
            return .wait(activity: "waiting for rows", detail: "validating the backlog before drawing U (\(validating) rows left)",
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

    /// Waits out `zval_debounce_seconds`, counted from the first time this change was seen (or the
    /// quiet time since the last Z_val edit, whichever ends first).
    func debounce(key: String, ageSeconds: Double?, settings: Settings) -> Decision? {
        let window = settings.zvalDebounceSeconds
        if changeSeenAt?.key != key { changeSeenAt = (key, .now) }
        let seen = (ContinuousClock.now - changeSeenAt!.at).seconds
        if seen >= window || (ageSeconds ?? 0) >= window { return nil }
        return .wait(activity: "debouncing", detail: "waiting \(Int((window - max(seen, ageSeconds ?? 0)).rounded(.up))) s for further changes",
                     done: nil, total: nil, unit: nil)
    }

    /// A base model under exactly these settings diverged before: retraining would diverge again.
    func divergedBefore(settings: Settings, on connection: Connection) async throws -> Decision? {
        let config = BaseModelConfig(settings: settings)
        let failed = try await connection.query("""
            SELECT reason FROM tov.base_models WHERE status = 'failed' AND reason LIKE 'diverged%' AND config = $1::jsonb
              AND u_size = $2 ORDER BY base_version DESC LIMIT 1
            """, [config.json, settings.uSize])
        guard let row = failed.first else { return nil }
        return .wait(activity: "blocked", detail: "\(try row.get(String.self, 0)); change the settings to retry", done: nil, total: nil, unit: nil)
    }

    func refreshReason(base: Int, zvalVersion: Int64, settings: Settings, forced: Bool, on connection: Connection) async throws -> String {
        if forced { return "tovd refresh" }
        guard let last = try await connection.query("""
            SELECT base_version, zval_version, method, val_lr_ratio FROM tov.model_versions
            WHERE status IN ('complete', 'superseded') ORDER BY model_version DESC LIMIT 1
            """).first else { return "first model version" }
        if Int(try last.get(Int32.self, 0)) != base { return "new base model" }
        if try last.get(Int64.self, 1) != zvalVersion { return "Z_val changed" }
        if try last.get(String.self, 2) != settings.selection.method.rawValue { return "method changed" }
        return "val_lr_ratio changed"
    }

    // MARK: - Base models (bootstrap, rebase)

    func trainBaseModel(reason: String, settings: Settings, fence: LeaderFence, activity: ActivityWriter,
                        on connection: Connection) async throws {
        let started = ContinuousClock.now
        let config = BaseModelConfig(settings: settings)
        if let problem = config.memoryProblem() {
            settingsProblem(problem)
            try await activity.set("blocked", reason: reason, detail: problem, done: nil, total: nil, unit: nil)
            try await Task.sleep(for: .seconds(5))
            return
        }
        let baseVersion = try await fence.transaction(on: connection) { tx -> Int in
            try await tx.execute("UPDATE tov.training_requests SET started_at = now() WHERE kind = 'rebase' AND started_at IS NULL")
            let created = try await tx.query("""
                INSERT INTO tov.base_models (u_size, epochs, config, reason, pool_rows_at_draw)
                VALUES ($1, $2, $3::jsonb, $4, (SELECT count(*) FROM tov.ready)) RETURNING base_version
                """, [settings.uSize, settings.epochs, config.json, reason])
            let version = Int(try created.first!.get(Int32.self, 0))
            // U: a uniform sample of ready rows, ordered by a seeded hash so a rerun picks the same rows.
            try await tx.execute("""
                INSERT INTO tov.base_subset (base_version, candidate_id)
                SELECT $1, r.candidate_id FROM tov.ready r
                ORDER BY md5($2::text || ':u:' || r.candidate_id::text) COLLATE "C", r.candidate_id
                LIMIT $3
                """, [version, String(settings.selection.seed), settings.uSize])
            return version
        }
        logger.info("training a base model", metadata: [
            "base_version": "\(baseVersion)", "reason": "\(reason)", "u_rows": "\(settings.uSize)", "epochs": "\(settings.epochs)",
        ])
        let u = try await Self.loadU(baseVersion, on: connection)
        var trainer = TrajectoryTrainer(config: config, logger: logger)
        trainer.shouldStop = { [stopFlag] in stopFlag.isSet || !fence.isHeld }
        let progress = ProgressBox()
        trainer.progress = { [injectedPhaseDelay] phase, done, total in
            if progress.set(phase.rawValue, done, total), let ms = injectedPhaseDelay { usleep(ms * 1000) }
        }
        try await activity.set(TrainingPhase.pretraining.rawValue, reason: reason, detail: nil, done: 0, total: config.pretrainSteps, unit: "steps")
        do {
            try await activity.following(progress, reason: reason, unit: { $0 == TrainingPhase.pretraining.rawValue ? "steps" : "epochs" }) {
                try await trainer.trainBase(u: u) { kind, epoch, checkpoint in
                    try await self.storeCheckpoint(checkpoint, baseVersion: baseVersion, modelVersion: nil, kind: kind, epoch: epoch,
                                                   fence: fence, on: connection)
                }
            }
        } catch let error as DaemonError where error.code == .model {
            try await fence.transaction(on: connection) { tx in
                try await tx.execute("UPDATE tov.base_models SET status = 'failed', finished_at = now(), reason = $2 WHERE base_version = $1",
                                     [baseVersion, "diverged: \(error.message)"])
            }
            settingsProblem(error.message)
            throw error
        }
        try await fence.transaction(on: connection) { tx in
            try await tx.execute("UPDATE tov.base_models SET status = 'complete', finished_at = now() WHERE base_version = $1", [baseVersion])
            // One current base model: older ones serve only the versions built on them until the switch.
            try await tx.execute("UPDATE tov.base_models SET status = 'superseded' WHERE status = 'complete' AND base_version < $1", [baseVersion])
        }
        logger.notice("base model ready", metadata: [
            "base_version": "\(baseVersion)", "reason": "\(reason)", "seconds": "\((ContinuousClock.now - started).seconds)",
        ])
    }

    /// Logged once per distinct problem, not at every decision that runs into it again.
    private func settingsProblem(_ message: String) {
        guard message != lastProblem else { return }
        lastProblem = message
        logger.error("settings cannot be used; keeping the current model", metadata: ["problem": "\(message)"])
    }
    private var lastProblem: String?

    // MARK: - Refresh (θ_val)

    func refresh(base: Int, reason: String, requestID: Int64?, settings: Settings, fence: LeaderFence,
                 activity: ActivityWriter, on connection: Connection) async throws {
        let started = ContinuousClock.now
        let method = settings.selection.method
        let zvalVersion = try await connection.query(Queries.zvalVersionGet).first!.get(Int64.self, 0)
        let zval = try await validatedZval(settings: settings, fence: fence, on: connection)
        guard !zval.isEmpty else {
            try await activity.set("waiting for Z_val", reason: reason,
                                   detail: "every row of tov.validation was rejected (see tov.validation_rejects)", done: nil, total: nil, unit: nil)
            try await Task.sleep(for: .seconds(2))
            return
        }
        let config = try await baseConfig(base, on: connection)
        guard let (theta0, baseCheckpoints) = try await loadBaseCheckpoints(base: base, epochs: config.epochs, fence: fence, on: connection) else {
            return
        }
        let (modelVersion, refreshID) = try await fence.transaction(on: connection) { tx -> (Int, Int64) in
            if let requestID {
                try await tx.execute("UPDATE tov.training_requests SET started_at = now() WHERE kind = 'refresh' AND started_at IS NULL AND id <= $1", [requestID])
            }
            let created = try await tx.query("""
                INSERT INTO tov.model_versions (base_version, zval_version, method, val_lr_ratio, reason, leader)
                VALUES ($1, $2, $3, $4::float8, $5, $6) RETURNING model_version
                """, [base, zvalVersion, method.rawValue, settings.valLearningRateRatio, reason, instance])
            let version = Int(try created.first!.get(Int32.self, 0))
            let id = try await tx.query("""
                INSERT INTO tov.refreshes (model_version, zval_version, reason) VALUES ($1, $2, $3) RETURNING id
                """, [version, zvalVersion, reason]).first!.get(Int64.self, 0)
            return (version, id)
        }
        logger.info("refresh started: training θ_val", metadata: [
            "model_version": "\(modelVersion)", "base_version": "\(base)", "zval_version": "\(zvalVersion)",
            "method": "\(method.rawValue)", "reason": "\(reason)",
        ])
        let u = method == .B ? try await Self.loadU(base, on: connection) : []
        var trainer = TrajectoryTrainer(config: config.with(valLearningRateRatio: settings.valLearningRateRatio), logger: logger)
        trainer.shouldStop = { [stopFlag] in stopFlag.isSet || !fence.isHeld }
        let progress = ProgressBox()
        trainer.progress = { [injectedPhaseDelay] phase, done, total in
            if progress.set(phase.rawValue, done, total), let ms = injectedPhaseDelay { usleep(ms * 1000) }
        }
        try await activity.set(TrainingPhase.valTrajectory.rawValue, reason: reason, detail: nil, done: 0, total: config.epochs, unit: "epochs")
        do {
            try await activity.following(progress, reason: reason, unit: { _ in "epochs" }) {
                if let delay = self.injectedTrainDelay { try await self.stall(delay, fence: fence) }
                try await trainer.trainVal(theta0: theta0, base: baseCheckpoints, zval: zval, u: u, method: method) { epoch, checkpoint in
                    try await self.storeCheckpoint(checkpoint, baseVersion: base, modelVersion: modelVersion, kind: "val", epoch: epoch,
                                                   fence: fence, on: connection)
                }
            }
        } catch let error as DaemonError where error.code == .model {
            try await fence.transaction(on: connection) { tx in
                try await tx.execute("UPDATE tov.model_versions SET status = 'failed', reason = $2 WHERE model_version = $1",
                                     [modelVersion, "diverged: \(error.message)"])
            }
            settingsProblem(error.message)
            throw error
        }
        let trainedSeconds = (ContinuousClock.now - started).seconds
        metrics.refreshSeconds.set(to: trainedSeconds)
        let enqueued = try await fence.transaction(on: connection) { tx -> Int in
            let enqueued = try await tx.execute(Queries.jobEnqueueMissingScores, [modelVersion, base])
            try await tx.execute("""
                UPDATE tov.model_versions SET status = 'scoring', trained_at = now(), rescore_total = $2 WHERE model_version = $1
                """, [modelVersion, enqueued])
            try await tx.execute("UPDATE tov.refreshes SET trained_at = now() WHERE id = $1", [refreshID])
            return enqueued
        }
        try await activity.set("rescoring", reason: reason, detail: "model version \(modelVersion)", done: 0, total: enqueued, unit: "rows")
        logger.info("θ_val trained; rescoring the pool", metadata: [
            "model_version": "\(modelVersion)", "rows": "\(enqueued)", "train_seconds": "\(trainedSeconds)",
        ])
        workers.signal()
    }

    /// Z_val rows checked like candidates (same validator, same `max_text_bytes`): a bad row is
    /// recorded in tov.validation_rejects, logged, and left out of training.
    func validatedZval(settings: Settings, fence: LeaderFence, on connection: Connection) async throws -> [RowText] {
        let validator = RowValidator(maxTextBytes: settings.maxTextBytes)
        var good: [RowText] = []
        var rejected: [(Int64, String, String)] = []
        // Sizes first, so a 100 MB row is refused without being fetched.
        for row in try await connection.query("""
            SELECT id, octet_length(prompt), octet_length(response),
                   CASE WHEN octet_length(prompt) <= $1 AND octet_length(response) <= $1 THEN convert_to(prompt, 'UTF8') END,
                   CASE WHEN octet_length(prompt) <= $1 AND octet_length(response) <= $1 THEN convert_to(response, 'UTF8') END
            FROM tov.validation ORDER BY id
            """, [settings.maxTextBytes]) {
            let id = try row.get(Int64.self, 0)
            guard !row.isNull(3) else {
                let bytes = max(Int(try row.get(Int32.self, 1)), Int(try row.get(Int32.self, 2)))
                rejected.append((id, RejectReason.tooLong.rawValue, "a field is \(bytes) bytes, over the limit of \(settings.maxTextBytes) (setting max_text_bytes)"))
                continue
            }
            let prompt = try row.get([UInt8].self, 3)
            let response = try row.get([UInt8].self, 4)
            switch validator.check(prompt: prompt, response: response) {
            case .ready: good.append(RowText(id: Int64(good.count), prompt: prompt, response: response))
            case .reject(let reason, let detail): rejected.append((id, reason.rawValue, detail))
            }
        }
        try await fence.transaction(on: connection) { tx in
            try await tx.execute("DELETE FROM tov.validation_rejects")
            if !rejected.isEmpty {
                try await tx.execute("""
                    INSERT INTO tov.validation_rejects (validation_id, reason, detail)
                    SELECT * FROM unnest($1::bigint[], $2::tov.reject_reason[], $3::text[]) ON CONFLICT DO NOTHING
                    """, [rejected.map(\.0), rejected.map(\.1), rejected.map(\.2)])
            }
        }
        if !rejected.isEmpty {
            logger.warning("Z_val rows left out of training; see tov.validation_rejects", metadata: [
                "rows": "\(rejected.count)", "first_id": "\(rejected[0].0)", "first_reason": "\(rejected[0].2)",
            ])
        }
        return good
    }

    /// Test hook: sleeps in short slices so shutdown and a lost lease still stop it promptly.
    private func stall(_ delay: Duration, fence: LeaderFence) async throws {
        let end = ContinuousClock.now + delay
        while ContinuousClock.now < end {
            if stopFlag.isSet || !fence.isHeld { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    // MARK: - Training that was interrupted

    /// The trainer is serial: while it decides, nothing of its own is training. A base model or a
    /// version still in `training` was left by a step that failed (its connection was cut, a
    /// query failed) or by a previous leader; it cannot be resumed from a half-written trajectory,
    /// so it is failed and the next decision trains it again.
    func failInterruptedTraining(fence: LeaderFence, on connection: Connection) async throws {
        let (bases, versions) = try await fence.transaction(on: connection) { tx -> (Int, Int) in
            let bases = try await tx.execute(
                "UPDATE tov.base_models SET status = 'failed', finished_at = now(), reason = coalesce(reason, '') || ' (interrupted)' WHERE status = 'training'")
            let versions = try await tx.execute(
                "UPDATE tov.model_versions SET status = 'failed', reason = coalesce(reason, '') || ' (interrupted)' WHERE status = 'training'")
            return (bases, versions)
        }
        if bases + versions > 0 {
            logger.notice("training was interrupted; it will be redone", metadata: ["base_models": "\(bases)", "model_versions": "\(versions)"])
        }
    }

    // MARK: - Checkpoints a worker could not load

    /// Workers mark a checkpoint they cannot load (missing bytes, bad checksum) with `load_error`.
    /// The trainer retrains rather than waiting forever: a bad θ_val fails its version (the next
    /// decision trains a new one on the same inputs); a bad θ0 or θ_bas fails the base model and
    /// every version on it (the next decision rebases). The last good selection stays until then.
    func failUnloadableCheckpoints(fence: LeaderFence, on connection: Connection) async throws {
        let bad = try await connection.query("""
            SELECT c.base_version, c.model_version, c.kind, c.epoch, c.load_error FROM tov.checkpoints c
            WHERE c.load_error IS NOT NULL
              AND (c.model_version IN (SELECT model_version FROM tov.model_versions WHERE status IN ('scoring', 'complete'))
                   OR (c.model_version IS NULL AND c.base_version IN (SELECT base_version FROM tov.base_models WHERE status = 'complete')))
            """)
        for row in bad {
            let base = Int(try row.get(Int32.self, 0))
            let version = row.isNull(1) ? 0 : Int(try row.get(Int32.self, 1))
            let kind = try row.get(String.self, 2)
            let epoch = Int(try row.get(Int32.self, 3))
            let error = try row.get(String.self, 4)
            try await fence.transaction(on: connection) { tx in
                if kind == "val" {
                    // A complete version stays readable (and scored by the workers that still have it
                    // loaded) until its replacement switches in; a version being rescored is replaced.
                    try await tx.execute("UPDATE tov.model_versions SET status = 'failed', reason = 'checkpoint unreadable' WHERE model_version = $1 AND status = 'scoring'", [version])
                    try await tx.execute("INSERT INTO tov.training_requests (kind, requested_by) VALUES ('refresh', 'tovd: unreadable checkpoint')")
                } else {
                    try await tx.execute("UPDATE tov.model_versions SET status = 'failed', reason = 'checkpoint unreadable' WHERE base_version = $1 AND status = 'scoring'", [base])
                    try await tx.execute("UPDATE tov.base_models SET status = 'failed', reason = 'checkpoint unreadable' WHERE base_version = $1", [base])
                }
                try await tx.execute("UPDATE tov.checkpoints SET load_error = NULL WHERE base_version = $1 AND coalesce(model_version, 0) = $2 AND kind = $3 AND epoch = $4",
                                     [base, version, kind, epoch])
            }
            logger.error("a checkpoint cannot be loaded; retraining it", metadata: [
                "checkpoint": "\(kind) epoch \(epoch) of base model \(base), version \(version)", "error": "\(error)",
            ])
        }
    }

    // MARK: - Storage helpers

    /// U of a base model, in candidate order (the order every trajectory sees it in).
    static func loadU(_ baseVersion: Int, on connection: Connection) async throws -> [RowText] {
        var texts: [RowText] = []
        for row in try await connection.query("""
            SELECT c.prompt, c.response, c.source FROM tov.base_subset b JOIN tov.candidates c ON c.id = b.candidate_id
            WHERE b.base_version = $1 ORDER BY b.candidate_id
            """, [baseVersion]) {
            texts.append(RowText(id: Int64(texts.count), prompt: Array(try row.get(String.self, 0).utf8),
                                 response: Array(try row.get(String.self, 1).utf8), source: row.isNull(2) ? nil : try row.get(String.self, 2)))
        }
        return texts
    }

    func baseConfig(_ base: Int, on connection: Connection) async throws -> BaseModelConfig {
        let text = try await connection.query("SELECT config::text FROM tov.base_models WHERE base_version = $1", [base]).first!.get(String.self, 0)
        return try BaseModelConfig(json: text)
    }

    func storeCheckpoint(_ bytes: [UInt8], baseVersion: Int, modelVersion: Int?, kind: String, epoch: Int,
                         fence: LeaderFence, on connection: Connection) async throws {
        try await fence.transaction(on: connection) { tx in
            try await tx.execute(Queries.checkpointInsert, [
                baseVersion, modelVersion.map(Int32.init), kind, epoch, bytes, SHA256.hexDigest(of: Data(bytes)),
            ])
        }
    }

    /// θ0 and θ_bas^1..L of `base`, each checked against its stored SHA-256 and decoded once; nil
    /// after failing the base model when one is missing or unreadable, so the next decision trains a
    /// new base model instead of this refresh failing forever.
    func loadBaseCheckpoints(base: Int, epochs: Int, fence: LeaderFence, on connection: Connection) async throws -> ([UInt8], [[UInt8]])? {
        var loaded: [String: [UInt8]] = [:]
        var problem: String?
        for row in try await connection.query("""
            SELECT kind, epoch, data, sha256 FROM tov.checkpoints
            WHERE base_version = $1 AND model_version IS NULL ORDER BY kind, epoch
            """, [base]) {
            let name = "\(try row.get(String.self, 0)) epoch \(try row.get(Int32.self, 1))"
            let bytes = try row.get([UInt8].self, 2)
            do {
                _ = try SurrogateCheckpoint.decode(bytes, expectedSHA256: try row.get(String.self, 3))
            } catch {
                problem = problem ?? "\(name): \(error)"
            }
            loaded[name] = bytes
        }
        let names = ["theta0 epoch 0"] + (1...epochs).map { "base epoch \($0)" }
        if problem == nil, let missing = names.first(where: { loaded[$0] == nil }) { problem = "\(missing) is missing" }
        guard let problem else { return (loaded[names[0]]!, names.dropFirst().map { loaded[$0]! }) }
        try await fence.transaction(on: connection) { tx in
            try await tx.execute("UPDATE tov.base_models SET status = 'failed', finished_at = now(), reason = $2 WHERE base_version = $1",
                                 [base, "checkpoint unreadable: \(problem)"])
            try await tx.execute("UPDATE tov.model_versions SET status = 'failed', reason = 'checkpoint unreadable' WHERE base_version = $1 AND status IN ('training', 'scoring')", [base])
        }
        logger.error("a base checkpoint cannot be used; training a new base model", metadata: ["base_version": "\(base)", "problem": "\(problem)"])
        return nil
    }
}

/// Progress reported from a training thread, read by the task that writes tov.leader_activity.
final class ProgressBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: (phase: String, done: Int, total: Int)?
    /// Returns whether the phase changed.
    @discardableResult
    func set(_ phase: String, _ done: Int, _ total: Int) -> Bool {
        lock.withLock {
            defer { value = (phase, done, total) }
            return value?.phase != phase
        }
    }
    var current: (phase: String, done: Int, total: Int)? { lock.withLock { value } }
}

/// Writes tov.leader_activity under the fence: what the trainer does, why, and how far it is.
///
/// One statement, fenced by its own WHERE clause rather than a transaction: `following` writes
/// from a second task while the trainer's task may be inside a transaction on the same connection,
/// and two tasks must never interleave BEGIN/COMMIT on one connection.
struct ActivityWriter: Sendable {
    let fence: LeaderFence
    let connection: Connection

    func set(_ activity: String, reason: String?, detail: String?, done: Int?, total: Int?, unit: String?) async throws {
        // started_at moves only when the activity changes, so a rate can be derived from it.
        try await connection.execute("""
            UPDATE tov.leader_activity SET
                started_at = CASE WHEN activity IS DISTINCT FROM $1 OR reason IS DISTINCT FROM $2 THEN now() ELSE started_at END,
                activity = $1, reason = $2, detail = $3, done = $4, total = $5, unit = $6, updated_at = now()
            WHERE EXISTS (SELECT 1 FROM tov.leader WHERE epoch = $7 AND lease_until > clock_timestamp())
            """, [activity, reason, detail, done.map(Int64.init), total.map(Int64.init), unit, fence.epoch])
    }

    /// Runs `body` while copying `progress` into the activity row once a second.
    func following<T>(_ progress: ProgressBox, reason: String, unit: @escaping @Sendable (String) -> String,
                      _ body: () async throws -> T) async throws -> T {
        let writer = Task {
            var last: String?
            while !Task.isCancelled {
                if let p = progress.current {
                    let key = "\(p.phase)/\(p.done)/\(p.total)"
                    if key != last {
                        try? await set(p.phase, reason: reason, detail: nil, done: p.done, total: p.total, unit: unit(p.phase))
                        last = key
                    }
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        defer { writer.cancel() }
        return try await body()
    }
}

extension BaseModelConfig {
    /// Why this host cannot train the configured surrogate, or nil: parameters, gradients and two
    /// AdamW moments (16 bytes per parameter) plus activations must fit in half the physical memory.
    func memoryProblem(physicalMemory: UInt64 = ProcessInfo.processInfo.physicalMemory) -> String? {
        let s = surrogate
        let parameters = Double(s.layers) * 12 * Double(s.width) * Double(s.width) + Double(s.vocab + s.context) * Double(s.width)
        let activations = Double(s.layers) * Double(s.context) * Double(s.width) * 64 * 16
            + Double(s.layers * s.heads) * Double(s.context) * Double(s.context) * 4 * 16
        let needed = parameters * 16 + activations
        guard needed > Double(physicalMemory) / 2 else { return nil }
        let gib = { (bytes: Double) in String(format: "%.1f GiB", bytes / 1_073_741_824) }
        return "surrogate \(s.layers)×\(s.width) (\(s.heads) heads, context \(s.context), vocab \(s.vocab)) needs about \(gib(needed)) to train, more than half of this host's \(gib(Double(physicalMemory))); choose a smaller surrogate"
    }
}
