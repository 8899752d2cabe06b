import Foundation
import Logging
import PQ
import Selection
import Surrogate
import Synchronization
import ToVPipeline

/// The leader's trainer: decides what model to train next and trains it, one job at a time, in its
/// own task. Three kinds of work, each ending in a model version that workers rescore and the
/// selection keeper switches to atomically (the old selection stays readable until then):
///
/// - **bootstrap**: no base model yet; draws U, pretrains θ0, trains θ_bas^1..L.
/// - **rebase**: a setting that shapes the base trajectory changed, the pool grew by `rebase_growth`
///   since U was drawn, or `tovd rebase` asked; trains a new base model the same way, then a version on it.
/// - **refresh**: a target's Z_val, `method` or its `val_lr_ratio` changed, or `tovd refresh` asked;
///   trains that target's θ_val^1..L on the shared base model, from its own Z_val.
///
/// A refresh in flight is never thrown away: while a target's version trains or rescores, further
/// changes of that target wait, and whatever changed meanwhile becomes exactly one next version once
/// the switch is done. Other targets refresh meanwhile, one after the other (the trainer is serial).
/// So a Z_val change is reflected in tov.selected within two refresh durations (train + rescore)
/// plus the debounce, at any rate of change, and the last version is trained on the latest Z_val.
/// The debounce counts from the first change the trainer saw, not the last, so a Z_val that
/// changes every second still refreshes.
final class Trainer: LeaderJob, @unchecked Sendable {
    // @unchecked: `policy` and `lastProblem` are touched only by the one task LeaderJobService runs
    // `step` and `leadershipEnded` on.
    let name = "trainer"
    let instance: String
    let settings: SettingsCache
    let workers: WakeupSignal
    let metrics: DaemonMetrics
    let logger: Logger
    /// The daemon is stopping: set by the first leader job's graceful-shutdown handler, so training
    /// stops and no new work starts (training stopped by shutdown is not a lost lease).
    let stopping: StopFlag
    private var policy = TrainerPolicy()
    /// What the debounce and the timings are read on, and the stalls of ``faults`` wait on.
    let clock: DaemonClock
    /// Test-only stalls (``Faults/trainDelay``, ``Faults/phaseDelay``); `.none` in production.
    let faults: Faults
    /// The arithmetic of this instance's scoring pass (`--scoring-precision`, resolved), which the
    /// Z_val signal's forward passes use too.
    let scoringPrecision: ScoringPrecision
    /// The arithmetic of θ0's bootstrap and the trajectories on this instance (`--training-precision`, resolved).
    let trainingPrecision: TrainingPrecision

    init(instance: String, settings: SettingsCache, workers: WakeupSignal, metrics: DaemonMetrics, stopping: StopFlag,
         clock: DaemonClock, faults: Faults, scoringPrecision: ScoringPrecision = .preferred,
         trainingPrecision: TrainingPrecision = .fp32, logger: Logger) {
        self.clock = clock
        self.scoringPrecision = scoringPrecision
        self.trainingPrecision = trainingPrecision
        self.faults = faults
        self.instance = instance
        self.settings = settings
        self.workers = workers
        self.metrics = metrics
        self.stopping = stopping
        self.logger = logger
    }

    /// A new term starts the debounce clock anew, and a problem this instance found as leader is no
    /// longer its to report (the next leader reports what it finds).
    func leadershipEnded() {
        policy.leadershipEnded()
        report(problem: nil)
    }

    func step(fence: LeaderFence, on connection: Connection) async throws -> Duration {
        let current = try await settings.current(on: connection)
        try await failInterruptedTraining(fence: fence, on: connection)
        let snapshot = try await TrainingStore.snapshot(
            settings: current, memoryProblem: BaseModelConfig(settings: current).memoryProblem(), on: connection)
        report(problem: TrainerPolicy.settingsProblem(snapshot))
        let action = policy.decide(snapshot, now: clock.now)
        let activity = ActivityWriter(fence: fence, connection: connection, clock: clock)
        switch action {
        case .wait(let what, let recheck):
            try await activity.set(what.activity, reason: nil, detail: what.detail, done: what.done, total: what.total, unit: what.unit)
            return recheck
        case .repair(let repairs):
            try await repair(repairs, fence: fence, on: connection)
            return .zero
        case .trainBase(let reason, let requests):
            try await trainBaseModel(reason: reason, requests: requests, settings: current, fence: fence, activity: activity, on: connection)
            return .zero
        case .refresh(let target, let base, let reason, let requests, let answers):
            // The policy decided from these settings' targets: the target is among them.
            guard let target = current.targets.first(where: { $0.id == target }) else { return TrainerPolicy.recheck }
            return try await refresh(target: target, among: current.targets.count, base: base, reason: reason, requests: requests,
                                     answers: answers, fence: fence, activity: activity, on: connection)
        case .measureSignal(let target, let version):
            guard let target = current.targets.first(where: { $0.id == target }) else { return TrainerPolicy.recheck }
            return try await measureSignal(target: target, among: current.targets.count, version: version, fence: fence,
                                           activity: activity, on: connection)
        }
    }

    /// A setting the trainer cannot use goes to tov.status.settings_error (through the settings cache,
    /// which every instance's reporter publishes) and the log, once per distinct problem.
    private func report(problem: String?) {
        settings.setTrainingProblem(problem)
        guard let problem, problem != lastProblem else {
            if problem == nil { lastProblem = nil }
            return
        }
        lastProblem = problem
        logger.error("settings cannot be used; keeping the current model", metadata: ["problem": "\(problem)"])
    }
    private var lastProblem: String?

    // MARK: - Base models (bootstrap, rebase)

    func trainBaseModel(reason: String, requests: [Int64], settings: Settings, fence: LeaderFence, activity: ActivityWriter,
                        on connection: Connection) async throws {
        let started = clock.now
        let config = BaseModelConfig(settings: settings)
        let baseVersion = try await fence.transaction(on: connection) { tx -> Int in
            try await TrainingStore.requestsStart(requests, on: tx)
            return try await TrainingStore.baseModelCreate(.init(uSize: settings.uSize, epochs: settings.epochs, config: config,
                                                                 reason: reason, seed: String(settings.selection.seed)), on: tx)
        }
        logger.info("training a base model", metadata: [
            "base_version": "\(baseVersion)", "reason": "\(reason)", "u_rows": "\(settings.uSize)", "epochs": "\(settings.epochs)",
        ])
        let u = try await TrainingStore.baseSubsetTexts(baseVersion, on: connection)
        let imported: SurrogateCheckpoint.Stored?
        switch try await importedTheta0(config, base: baseVersion, fence: fence, on: connection) {
        case .success(let stored): imported = stored
        case .failure(let error):
            // The base model is failed with the reason; the next decision sees it and blocks the rebase.
            report(problem: error.message)
            return
        }
        var trainer = TrajectoryTrainer(config: config, logger: logger, precision: trainingPrecision)
        trainer.shouldStop = { [stopping] in stopping.isSet || !fence.isHeld }
        let progress = ProgressBox()
        // On the training thread, which cannot await a clock: the phase delay is wall time.
        let phaseDelayMicroseconds = faults.phaseDelay.map { UInt32($0.seconds * 1_000_000) }
        trainer.progress = { phase, done, total in
            if progress.set(phase.rawValue, done, total), let us = phaseDelayMicroseconds { usleep(us) }
        }
        if imported == nil {
            try await activity.set(TrainingPhase.pretraining.rawValue, reason: reason, detail: nil, done: 0, total: config.pretrainSteps, unit: "steps")
        } else {
            try await activity.set(TrainingPhase.baseTrajectory.rawValue, reason: reason, detail: "from θ0 \(config.theta0 ?? "")",
                                   done: 0, total: config.epochs, unit: "epochs")
        }
        do {
            try await activity.following(progress, reason: reason, unit: { $0 == TrainingPhase.pretraining.rawValue ? "steps" : "epochs" }) {
                try await trainer.trainBase(u: u, imported: imported) { kind, epoch, checkpoint in
                    try await self.storeCheckpoint(.init(base: baseVersion, modelVersion: nil, kind: kind, epoch: epoch, bytes: checkpoint),
                                                   fence: fence, on: connection)
                }
            }
        } catch let error as DaemonError where error.code == .model {
            // A diverged trajectory served its requests: retrying the same settings diverges again.
            try await fence.transaction(on: connection) { tx in
                try await tx.execute(TrainingStore.baseModelFail, [baseVersion, "diverged: \(error.message)"])
                try await TrainingStore.requestsServe(requests, by: "base model \(baseVersion) (diverged)", on: tx)
            }
            report(problem: error.message)
            throw error
        }
        try await fence.transaction(on: connection) { tx in
            try await TrainingStore.baseModelComplete(baseVersion, on: tx)
            try await TrainingStore.requestsServe(requests, by: "base model \(baseVersion)", on: tx)
        }
        logger.notice("base model ready", metadata: [
            "base_version": "\(baseVersion)", "reason": "\(reason)", "seconds": "\((clock.now - started).seconds)",
        ])
    }

    /// The imported θ0 this base model starts from (nil for the bootstrap), checked against the
    /// SHA-256 recorded at import and decoded. The policy did not start a base model whose θ0 is
    /// missing or misshapen by its stored config. Stored bytes that no longer check out fail this base
    /// model with reason `theta0 unusable: …`, which the store reads like a divergence
    /// (``TrainingStore/baseModelDivergedGet``): the same settings are not retried in a loop. A θ0
    /// deleted since the decision fails it too, without that mark: the next decision's
    /// ``TrainerPolicy/theta0Problem(_:)`` blocks the rebase until it is imported again.
    private func importedTheta0(_ config: BaseModelConfig, base: Int, fence: LeaderFence,
                                on connection: Connection) async throws -> Result<SurrogateCheckpoint.Stored?, DaemonError> {
        guard let name = config.theta0 else { return .success(nil) }
        let problem: String
        if let stored = try await TrainingStore.theta0Checkpoint(name, on: connection) {
            do {
                let decoded = try SurrogateCheckpoint.decode(stored.bytes, expectedSHA256: stored.sha256)
                let c = decoded.model.config
                let shape = Settings.SurrogateShape(layers: c.layers, width: c.width, heads: c.heads, context: c.context, vocab: c.vocabSize)
                if shape == config.surrogate { return .success(.init(checkpoint: decoded, bytes: stored.bytes)) }
                problem = "theta0 unusable: θ0 \(name) is a \(shape.summary) model, not the surrogate's \(config.surrogate.summary)"
            } catch {
                problem = "theta0 unusable: θ0 \(name) cannot be loaded: \(error)"
            }
        } else {
            problem = "θ0 \(name) is not imported"
        }
        try await fence.transaction(on: connection) { tx in try await tx.execute(TrainingStore.baseModelFail, [base, problem]) }
        logger.error("the imported θ0 cannot be used; the rebase waits until the settings change", metadata: ["base_version": "\(base)", "problem": "\(problem)"])
        return .failure(DaemonError(.config, problem))
    }

    // MARK: - Refresh (θ_val)

    /// Trains a version of `target` from its own Z_val under its own settings, on the shared base
    /// model, and hands it to the workers; returns how long to wait before deciding again (a Z_val
    /// whose every row is rejected leaves nothing to train on). `targets` is how many the pool has: a
    /// detail names the target only among several, so a single-target pipeline reads as it did.
    func refresh(target: TargetSettings, among targets: Int, base: Int, reason: String, requests: [Int64], answers: [Int64],
                 fence: LeaderFence, activity: ActivityWriter, on connection: Connection) async throws -> Duration {
        let started = clock.now
        let settings = target.settings
        let method = settings.selection.method
        let named = { (detail: String?) -> String? in
            guard targets > 1 else { return detail }
            return "target \(target.name)" + (detail.map { ": \($0)" } ?? "")
        }
        // Read before its rows: a change after this read bumps the version, and the next decision
        // trains again on the newer rows.
        guard let zvalRow = try await connection.query(TrainingStore.targetZvalVersionGet, [target.id]).first else {
            logger.notice("target dropped before its refresh began", metadata: ["target": "\(target.name)"])
            return .zero
        }
        let zvalVersion = try zvalRow.get(Int64.self, "zval_version")
        let zval = try await validatedZval(target: target.name, settings: settings, fence: fence, on: connection)
        guard !zval.isEmpty else {
            let rows = targets > 1 ? "every row of tov.validation with target = '\(target.name)'" : "every row of tov.validation"
            try await activity.set("waiting for Z_val", reason: reason,
                                   detail: named("\(rows) was rejected (see tov.validation_rejects)"), done: nil, total: nil, unit: nil)
            return TrainerPolicy.recheck
        }
        let config = try await TrainingStore.baseModelConfig(base, on: connection)
        guard let (theta0, baseCheckpoints) = try await loadBaseCheckpoints(base: base, epochs: config.epochs, fence: fence, on: connection) else {
            return .zero
        }
        let (modelVersion, refreshID) = try await fence.transaction(on: connection) { tx in
            // Every-target requests it answers are started too: the versions created from now on
            // count as answers to them (TrainingStore.requestAnsweredMany).
            try await TrainingStore.requestsStart(requests + answers, on: tx)
            return try await TrainingStore.modelVersionCreate(.init(
                target: target.id, base: base, zvalVersion: zvalVersion, method: method.rawValue,
                valLearningRateRatio: settings.valLearningRateRatio, reason: reason, leader: instance), on: tx)
        }
        logger.info("refresh started: training θ_val", metadata: [
            "target": "\(target.name)", "model_version": "\(modelVersion)", "base_version": "\(base)", "zval_version": "\(zvalVersion)",
            "method": "\(method.rawValue)", "val_lr_ratio": "\(settings.valLearningRateRatio)", "reason": "\(reason)",
        ])
        // U: Method B's θ_val trains on it, and score_dsir's n-gram model compares Z_val with it.
        let u = try await TrainingStore.baseSubsetTexts(base, on: connection)
        var trainer = TrajectoryTrainer(config: config.with(valLearningRateRatio: settings.valLearningRateRatio), logger: logger,
                                        precision: trainingPrecision)
        trainer.shouldStop = { [stopping] in stopping.isSet || !fence.isHeld }
        let progress = ProgressBox()
        // On the training thread, which cannot await a clock: the phase delay is wall time.
        let phaseDelayMicroseconds = faults.phaseDelay.map { UInt32($0.seconds * 1_000_000) }
        trainer.progress = { phase, done, total in
            if progress.set(phase.rawValue, done, total), let us = phaseDelayMicroseconds { usleep(us) }
        }
        try await activity.set(TrainingPhase.valTrajectory.rawValue, reason: reason, detail: named(nil), done: 0, total: config.epochs, unit: "epochs")
        do {
            try await activity.following(progress, reason: reason, detail: named(nil), unit: { _ in "epochs" }) {
                if let delay = self.faults.trainDelay { try await self.stall(delay, fence: fence) }
                try await trainer.trainVal(theta0: theta0, base: baseCheckpoints, zval: zval, u: u, method: method) { epoch, checkpoint in
                    try await self.storeCheckpoint(.init(base: base, modelVersion: modelVersion, kind: "val", epoch: epoch, bytes: checkpoint),
                                                   fence: fence, on: connection)
                }
            }
        } catch let error as DaemonError where error.code == .model {
            try await fence.transaction(on: connection) { tx in
                try await tx.execute(TrainingStore.modelVersionFail, [modelVersion, "diverged: \(error.message)"])
                try await TrainingStore.requestsServe(requests, by: "model version \(modelVersion) (diverged)", on: tx)
            }
            report(problem: error.message)
            throw error
        }
        // score_dsir's weights for this version: Z_val's n-grams against U's (a few seconds of hashing).
        let importance = NgramImportance(zval: zval, u: u)
        let trainedSeconds = (clock.now - started).seconds
        metrics.refreshSeconds.set(to: trainedSeconds)
        let enqueued = try await fence.transaction(on: connection) { tx -> Int in
            try await TrainingStore.requestsServe(requests, by: "model version \(modelVersion)", on: tx)
            try await TrainingStore.modelVersionImportanceSet(modelVersion, importance, on: tx)
            return try await TrainingStore.modelVersionStartScoring(modelVersion, base: base, refresh: refreshID, on: tx)
        }
        try await activity.set("rescoring", reason: reason, detail: named("model version \(modelVersion)"), done: 0, total: enqueued, unit: "rows")
        logger.info("θ_val trained; rescoring the pool", metadata: [
            "target": "\(target.name)", "model_version": "\(modelVersion)", "rows": "\(enqueued)", "train_seconds": "\(trainedSeconds)",
        ])
        workers.signal()
        return .zero
    }

    // MARK: - The Z_val signal (after the switch)

    /// Measures the Z_val signal (docs/selection.md) of `version`, the live version of `target`, and
    /// records it: after the switch, because the selection does not read it, so neither a bootstrap
    /// nor a refresh waits for it before rescoring. The version's own Z_val, learning rate and last
    /// θ_bas are what its θ_val was trained with; a Z_val changed since leaves it unmeasured (the
    /// refresh that follows replaces the version).
    func measureSignal(target: TargetSettings, among targets: Int, version: Int, fence: LeaderFence, activity: ActivityWriter,
                       on connection: Connection) async throws -> Duration {
        guard let inputs = try await connection.query(TrainingStore.modelVersionSignalInputsGet, [version]).first else { return .zero }
        let zvalVersion = try inputs.get(Int64.self, "zval_version")
        guard zvalVersion == (try inputs.get(Int64.self, "current_zval_version")) else { return .zero }
        let base = Int(try inputs.get(Int32.self, "base_version"))
        let ratio = try inputs.getOptional(Double.self, "val_lr_ratio") ?? target.settings.valLearningRateRatio
        let config = try await TrainingStore.baseModelConfig(base, on: connection).with(valLearningRateRatio: ratio)
        let detail = "model version \(version)"
        try await activity.set("measuring Z_val signal", reason: nil, detail: targets > 1 ? "target \(target.name): \(detail)" : detail,
                               done: nil, total: nil, unit: nil)
        let zval = try await checkedZval(target: target.name, settings: target.settings, on: connection).good
        guard let (_, baseCheckpoints) = try await loadBaseCheckpoints(base: base, epochs: config.epochs, fence: fence, on: connection) else {
            return .zero
        }
        let u = try await TrainingStore.baseSubsetTexts(base, on: connection)
        var trainer = TrajectoryTrainer(config: config, logger: logger, precision: trainingPrecision)
        trainer.shouldStop = { [stopping] in stopping.isSet || !fence.isHeld }
        let agreement = try await zvalAgreement(target: target.name, modelVersion: version, base: base, seed: config.seed,
                                                lastBase: baseCheckpoints.last!, zval: zval, u: u, trainer: trainer, on: connection)
        try await fence.transaction(on: connection) { tx in
            try await TrainingStore.modelVersionAgreementSet(version, agreement, zval: zval, on: tx)
        }
        return .zero
    }

    /// The Z_val signal of a version, measured on a sample of the ready rows outside U. It only
    /// informs: a failure to measure it is logged and recorded as none.
    private func zvalAgreement(target: String, modelVersion: Int, base: Int, seed: Int64, lastBase: [UInt8], zval: [RowText], u: [RowText],
                               trainer: TrajectoryTrainer, on connection: Connection) async throws -> ZvalAgreement? {
        let sample = try await TrainingStore.agreementSampleTexts(base: base, seed: seed, limit: ZvalAgreement.sampleSize, on: connection)
        do {
            let agreement = try await trainer.zvalAgreement(lastBase: lastBase, zval: zval, u: u, sample: sample, precision: scoringPrecision)
            var metadata: Logger.Metadata = ["target": "\(target)", "model_version": "\(modelVersion)",
                                             "sample_rows": "\(sample.count)", "zval_rows": "\(zval.count)"]
            if let agreement {
                metadata["agreement"] = "\(String(format: "%.3f", agreement.agreement))"
                metadata["transfer"] = "\(String(format: "%.3f", agreement.transfer))"
                metadata["helped_share"] = "\(String(format: "%.3f", agreement.helpedShare))"
                metadata["contexts"] = "\(agreement.groups)"
            } else {
                metadata["agreement"] = "none (Z_val or the pool outside U too small)"
            }
            logger.info("Z_val agreement measured", metadata: metadata)
            return agreement
        } catch let error as CancellationError {
            throw error
        } catch {
            logger.warning("the Z_val agreement could not be measured; the version keeps none",
                           metadata: ["target": "\(target)", "model_version": "\(modelVersion)", "error": "\(error)"])
            return nil
        }
    }

    /// The Z_val rows of target `target` checked like candidates (same validator, same
    /// `max_text_bytes`): a bad row is recorded in tov.validation_rejects, logged, and left out of
    /// training. The target's rejects are rewritten at each of its refreshes, so a raised limit takes
    /// a row back; other targets' rejects stay until their own refresh. Each row keeps its tov.validation
    /// id (the Z_val signal records a gain per row).
    func validatedZval(target: String, settings: Settings, fence: LeaderFence, on connection: Connection) async throws -> [RowText] {
        let (good, rejected) = try await checkedZval(target: target, settings: settings, on: connection)
        try await fence.transaction(on: connection) { tx in try await TrainingStore.validationRejectsReplace(target: target, rejected, on: tx) }
        if !rejected.isEmpty {
            logger.warning("Z_val rows left out of training; see tov.validation_rejects", metadata: [
                "target": "\(target)", "rows": "\(rejected.count)", "first_id": "\(rejected[0].0)", "first_reason": "\(rejected[0].2)",
            ])
        }
        return good
    }

    /// Target `target`'s Z_val rows split by the row validator into the rows training uses and the
    /// rejected ones (id, reason, detail); nothing is written.
    private func checkedZval(target: String, settings: Settings,
                             on connection: Connection) async throws -> (good: [RowText], rejected: [(Int64, String, String)]) {
        let validator = RowValidator(maxTextBytes: settings.maxTextBytes)
        var good: [RowText] = []
        var rejected: [(Int64, String, String)] = []
        for row in try await TrainingStore.validationSizedMany(target: target, maxTextBytes: settings.maxTextBytes, on: connection) {
            guard let (prompt, response) = row.text else {
                rejected.append((row.id, RejectReason.tooLong.rawValue,
                                 "a field is \(row.largestField) bytes, over the limit of \(settings.maxTextBytes) (setting max_text_bytes)"))
                continue
            }
            switch validator.check(prompt: prompt, response: response) {
            case .ready: good.append(RowText(id: row.id, prompt: prompt, response: response))
            case .reject(let reason, let detail): rejected.append((row.id, reason.rawValue, detail))
            }
        }
        return (good, rejected)
    }

    /// Test hook: sleeps in short slices so shutdown and a lost lease still stop it promptly.
    private func stall(_ delay: Duration, fence: LeaderFence) async throws {
        let end = clock.now + delay
        while clock.now < end {
            if stopping.isSet || !fence.isHeld { throw CancellationError() }
            try await clock.sleep(for: .milliseconds(100))
        }
    }

    // MARK: - Training that was interrupted, checkpoints that cannot be loaded

    /// The trainer is serial: while it decides, nothing of its own is training. A base model or a
    /// version still in `training` was left by a step that failed (its connection was cut, a query
    /// failed) or by a previous leader; it cannot be resumed from a half-written trajectory, so it is
    /// failed, and the requests it served stay pending for the next decision.
    func failInterruptedTraining(fence: LeaderFence, on connection: Connection) async throws {
        let failed = try await fence.transaction(on: connection) { tx in try await TrainingStore.trainingInterruptedFailMany(on: tx) }
        if failed.bases + failed.versions > 0 {
            logger.notice("training was interrupted; it will be redone", metadata: [
                "base_models": "\(failed.bases)", "model_versions": "\(failed.versions)",
            ])
        }
    }

    func repair(_ repairs: [TrainerAction.Repair], fence: LeaderFence, on connection: Connection) async throws {
        for repair in repairs {
            try await fence.transaction(on: connection) { tx in
                switch repair {
                case .failVersion(let version, let problem): try await TrainingStore.modelVersionUnloadableFail(version, problem: problem, on: tx)
                case .failBase(let base, let problem): try await TrainingStore.baseModelUnloadableFail(base, problem: problem, on: tx)
                }
            }
            logger.error("a checkpoint cannot be loaded; retraining it", metadata: ["repair": "\(repair)"])
        }
    }

    // MARK: - Checkpoints

    func storeCheckpoint(_ checkpoint: TrainingStore.CheckpointInsertParams, fence: LeaderFence, on connection: Connection) async throws {
        try await fence.transaction(on: connection) { tx in try await TrainingStore.checkpointInsert(checkpoint, on: tx) }
    }

    /// θ0 and θ_bas^1..L of `base`, each checked against its stored SHA-256 and decoded once; nil
    /// after failing the base model when one is missing or unreadable, so the next decision trains a
    /// new base model instead of this refresh failing forever.
    func loadBaseCheckpoints(base: Int, epochs: Int, fence: LeaderFence, on connection: Connection) async throws -> ([UInt8], [[UInt8]])? {
        var loaded: [String: [UInt8]] = [:]
        var problem: String?
        for stored in try await TrainingStore.baseCheckpointMany(base, on: connection) {
            do {
                _ = try SurrogateCheckpoint.decode(stored.bytes, expectedSHA256: stored.sha256)
            } catch {
                problem = problem ?? "\(stored.name): \(error)"
            }
            loaded[stored.name] = stored.bytes
        }
        let names = ["theta0 epoch 0"] + (1...epochs).map { "base epoch \($0)" }
        if problem == nil, let missing = names.first(where: { loaded[$0] == nil }) { problem = "\(missing) is missing" }
        guard let problem else { return (loaded[names[0]]!, names.dropFirst().map { loaded[$0]! }) }
        try await fence.transaction(on: connection) { tx in
            try await TrainingStore.baseModelUnloadableFail(base, problem: problem, on: tx)
        }
        logger.error("a base checkpoint cannot be used; training a new base model", metadata: ["base_version": "\(base)", "problem": "\(problem)"])
        return nil
    }
}

/// Progress reported from a training thread, read by the task that writes tov.leader_activity.
final class ProgressBox: Sendable {
    private let value = Mutex<(phase: String, done: Int, total: Int)?>(nil)
    /// Returns whether the phase changed.
    @discardableResult
    func set(_ phase: String, _ done: Int, _ total: Int) -> Bool {
        value.withLock { value in
            defer { value = (phase, done, total) }
            return value?.phase != phase
        }
    }
    var current: (phase: String, done: Int, total: Int)? { value.withLock { $0 } }
}

/// Writes tov.leader_activity under the fence: what the trainer does, why, and how far it is.
///
/// One statement, fenced by its own WHERE clause rather than a transaction: `following` writes
/// from a second task while the trainer's task may be inside a transaction on the same connection,
/// and two tasks must never interleave BEGIN/COMMIT on one connection.
struct ActivityWriter: Sendable {
    let fence: LeaderFence
    let connection: Connection
    /// What the once-a-second copy of progress waits on.
    let clock: DaemonClock

    func set(_ activity: String, reason: String?, detail: String?, done: Int?, total: Int?, unit: String?) async throws {
        try await TrainingStore.activitySet(.init(activity: activity, reason: reason, detail: detail, done: done, total: total,
                                                  unit: unit, epoch: fence.epoch), on: connection)
    }

    /// Runs `body` while copying `progress` into the activity row once a second, with `detail`.
    func following<T>(_ progress: ProgressBox, reason: String, detail: String? = nil, unit: @escaping @Sendable (String) -> String,
                      _ body: () async throws -> T) async throws -> T {
        let writer = Task {
            var last: String?
            while !Task.isCancelled {
                if let p = progress.current {
                    let key = "\(p.phase)/\(p.done)/\(p.total)"
                    if key != last {
                        try? await set(p.phase, reason: reason, detail: detail, done: p.done, total: p.total, unit: unit(p.phase))
                        last = key
                    }
                }
                try? await clock.sleep(for: .seconds(1))
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
