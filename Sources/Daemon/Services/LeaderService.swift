import Foundation
import Logging
import PQ
import Selection
import ServiceLifecycle
import Surrogate

/// The jobs that must run once across all instances: bootstrap of the base trajectory, the θ_val
/// refresh after a Z_val change, the atomic switch to a fully rescored model version, the selection
/// update, and the sweeper that re-enqueues rows a crash or a race left unscored.
///
/// Leadership is a session advisory lock on a dedicated connection: when the leader dies, its
/// connection closes, Postgres releases the lock and another instance's next tick takes it. Anything
/// a dead leader left half-done (a model version in `training`) is marked failed and redone.
public final class LeaderService: Service, @unchecked Sendable {
    /// `tovd_ldr` in ASCII.
    static let lockKey: Int64 = 0x746F_7664_5F6C_6472

    public struct Configuration: Sendable {
        public var conninfo: String
        public var instance: String
        public var tickInterval: Duration = .seconds(1)
        /// Shortest time between two ticks, however often new scores wake the leader.
        public var minimumTickGap: Duration = .milliseconds(200)
        public var sweepInterval: Duration = .seconds(30)
        public init(conninfo: String, instance: String) {
            self.conninfo = conninfo
            self.instance = instance
        }
    }

    let configuration: Configuration
    let wakeup: WakeupSignal
    let workers: WakeupSignal
    let metrics: DaemonMetrics
    let logger: Logger
    private let stopFlag = StopFlag()
    private var lastSweep: ContinuousClock.Instant?
    private var lastSelectionMark: String?

    public init(configuration: Configuration, wakeup: WakeupSignal, workers: WakeupSignal,
                metrics: DaemonMetrics, logger: Logger) {
        self.configuration = configuration
        self.wakeup = wakeup
        self.workers = workers
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            var connection: Connection?
            var leading = false
            while !stopFlag.isSet && !Task.isCancelled {
                do {
                    if connection == nil || !connection!.isConnected {
                        leading = false
                        metrics.isLeader.set(to: 0)
                        connection = try await Connection.connectRetrying(configuration.conninfo, as: "leader", logger: logger)
                    }
                    if !leading {
                        leading = try await connection!.tryAdvisoryLock(Self.lockKey)
                        if leading {
                            logger.info("this instance is now the leader", metadata: ["instance": "\(configuration.instance)"])
                            metrics.isLeader.set(to: 1)
                            try await takeOver(on: connection!)
                        }
                    }
                    if leading {
                        let tickStarted = ContinuousClock.now
                        try await tick(on: connection!)
                        await wakeup.wait(timeout: configuration.tickInterval)
                        // Every committed batch wakes us (tov_scores); fold bursts into one selection
                        // update per minimum gap instead of recomputing after each batch.
                        let gap = configuration.minimumTickGap - (ContinuousClock.now - tickStarted)
                        if gap > .zero { try? await Task.sleep(for: gap) }
                    } else {
                        await wakeup.wait(timeout: .seconds(5))
                    }
                } catch let error as PQError where error.isConnectionProblem {
                    logger.warning("leader lost its database connection", metadata: ["error": "\(error)"])
                    connection?.close()
                    connection = nil
                } catch is CancellationError {
                    break
                } catch {
                    logger.error("leader tick failed; retrying", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(2))
                }
            }
            if leading, let connection { try? await connection.advisoryUnlock(Self.lockKey) }
            connection?.close()
            metrics.isLeader.set(to: 0)
        } onGracefulShutdown: {
            self.stopFlag.set()
            self.wakeup.signal()
        }
    }

    /// A new leader first fails whatever the previous one left in `training`: it cannot be resumed
    /// from a half-written trajectory, and redoing it is cheap compared with guessing.
    func takeOver(on connection: Connection) async throws {
        try await connection.execute("UPDATE tov.leader SET instance = $1, since = now(), heartbeat_at = now()", [configuration.instance])
        let failedBases = try await connection.execute("UPDATE tov.base_models SET status = 'failed', finished_at = now() WHERE status = 'training'")
        let failedVersions = try await connection.execute("UPDATE tov.model_versions SET status = 'failed' WHERE status = 'training'")
        if failedBases + failedVersions > 0 {
            logger.notice("previous leader died while training; its work will be redone",
                          metadata: ["base_models": "\(failedBases)", "model_versions": "\(failedVersions)"])
        }
    }

    func tick(on connection: Connection) async throws {
        try await connection.execute("UPDATE tov.leader SET heartbeat_at = now() WHERE instance = $1", [configuration.instance])
        let settings = try await SettingsCache.load(on: connection)
        guard let base = try await ensureBaseModel(settings: settings, on: connection) else { return }
        try await ensureModelVersion(base: base, settings: settings, on: connection)
        try await finishRescoring(settings: settings, on: connection)
        try await sweepIfDue(on: connection)
        try await updateSelection(settings: settings, on: connection)
    }

    // MARK: - Base model

    /// Returns the ready base model, training one first if the pool is large enough.
    func ensureBaseModel(settings: Settings, on connection: Connection) async throws -> Int? {
        let existing = try await connection.query(
            "SELECT base_version FROM tov.base_models WHERE status = 'complete' ORDER BY base_version DESC LIMIT 1")
        if let row = existing.first { return Int(try row.get(Int32.self, 0)) }

        let counts = try await connection.query(
            "SELECT (SELECT count(*) FROM tov.ready), (SELECT count(*) FROM tov.jobs WHERE model_version = 0)")
        let ready = Int(try counts.first!.get(Int64.self, 0))
        let validating = Int(try counts.first!.get(Int64.self, 1))
        guard ready >= settings.uSize else {
            logger.debug("waiting for the pool to reach |U| before training the base model",
                         metadata: ["ready": "\(ready)", "u_size": "\(settings.uSize)"])
            return nil
        }
        // U must be uniform over the pool, not over the rows validated so far: with a backlog the
        // first validated batches are the oldest rows, often one source loaded first. Wait until
        // validation has caught up to within 5 % of the pool (it runs at thousands of rows/s, so
        // this holds even under a steady insert stream).
        guard Self.backlogAllowsSamplingU(ready: ready, validating: validating) else {
            logger.debug("waiting for validation to catch up before sampling U",
                         metadata: ["ready": "\(ready)", "validating": "\(validating)"])
            return nil
        }
        // A base model left in `training` by an earlier failed attempt of this leader is abandoned.
        try await connection.execute("UPDATE tov.base_models SET status = 'failed', finished_at = now() WHERE status = 'training'")
        return try await trainBaseModel(settings: settings, on: connection)
    }

    /// Whether the validation backlog is small enough (≤ 5 % of ready + backlog) for a sample of
    /// ready rows to stand for the whole pool.
    static func backlogAllowsSamplingU(ready: Int, validating: Int) -> Bool {
        validating * 20 <= ready + validating
    }

    func trainBaseModel(settings: Settings, on connection: Connection) async throws -> Int {
        let started = ContinuousClock.now
        let config = BaseModelConfig(settings: settings)
        let created = try await connection.query("""
            INSERT INTO tov.base_models (u_size, epochs, config) VALUES ($1, $2, $3::jsonb) RETURNING base_version
            """, [settings.uSize, settings.epochs, config.json])
        let baseVersion = Int(try created.first!.get(Int32.self, 0))
        // U: a uniform sample of ready rows, ordered by a seeded hash so a rerun picks the same rows.
        let sampled = try await connection.execute("""
            INSERT INTO tov.base_subset (base_version, candidate_id)
            SELECT $1, r.candidate_id FROM tov.ready r
            ORDER BY md5($2::text || ':u:' || r.candidate_id::text) COLLATE "C", r.candidate_id
            LIMIT $3
            """, [baseVersion, String(settings.selection.seed), settings.uSize])
        // Pending rescoring of U rows would be wasted work; U rows are excluded from scoring anyway.
        logger.info("training the base trajectory", metadata: [
            "base_version": "\(baseVersion)", "u_rows": "\(sampled)", "epochs": "\(settings.epochs)",
        ])
        let u = try await loadTexts("""
            SELECT c.prompt, c.response FROM tov.base_subset b JOIN tov.candidates c ON c.id = b.candidate_id
            WHERE b.base_version = $1 ORDER BY b.candidate_id
            """, [baseVersion], on: connection)
        var trainer = TrajectoryTrainer(config: config, logger: logger)
        trainer.shouldStop = { [stopFlag] in stopFlag.isSet }
        try await trainer.trainBase(u: u) { kind, epoch, checkpoint in
            try await self.storeCheckpoint(checkpoint, baseVersion: baseVersion, modelVersion: nil, kind: kind, epoch: epoch, on: connection)
        }
        try await connection.execute("UPDATE tov.base_models SET status = 'complete', finished_at = now() WHERE base_version = $1", [baseVersion])
        logger.info("base trajectory ready", metadata: [
            "base_version": "\(baseVersion)", "seconds": "\((ContinuousClock.now - started).seconds)",
        ])
        return baseVersion
    }

    // MARK: - Refresh (θ_val)

    /// Starts a new model version when Z_val, the method or the base model changed, after the
    /// debounce window has passed without another Z_val change.
    func ensureModelVersion(base: Int, settings: Settings, on connection: Connection) async throws {
        let zval = try await connection.query(Queries.zvalVersionGet)
        guard let z = zval.first else { return }
        let zvalVersion = try z.get(Int64.self, 0)
        let zvalAge = try z.get(Double.self, 1)
        let zvalRows = try z.get(Int64.self, 2)
        guard zvalRows > 0 else {
            logger.debug("Z_val is empty: insert rows into tov.validation to start scoring")
            return
        }
        let method = settings.selection.method.rawValue
        let current = try await connection.query("""
            SELECT model_version, status::text FROM tov.model_versions
            WHERE base_version = $1 AND zval_version = $2 AND method = $3 AND status IN ('training', 'scoring', 'complete')
            """, [base, zvalVersion, method])
        if !current.isEmpty { return }
        if zvalAge < settings.zvalDebounceSeconds {
            // Wake up when the window closes rather than polling it.
            let remaining = settings.zvalDebounceSeconds - zvalAge
            let wakeup = self.wakeup
            Task { try? await Task.sleep(for: .seconds(remaining)); wakeup.signal() }
            return
        }
        try await refresh(base: base, zvalVersion: zvalVersion, settings: settings, on: connection)
    }

    func refresh(base: Int, zvalVersion: Int64, settings: Settings, on connection: Connection) async throws {
        let started = ContinuousClock.now
        // A version still rescoring for an older Z_val is superseded: its work would be thrown away.
        let stale = try await connection.query("""
            UPDATE tov.model_versions SET status = 'failed' WHERE status IN ('training', 'scoring') RETURNING model_version
            """)
        for row in stale {
            let version = Int(try row.get(Int32.self, 0))
            try await connection.execute("DELETE FROM tov.jobs WHERE model_version = $1", [version])
            logger.info("superseded an unfinished model version", metadata: ["model_version": "\(version)"])
        }
        let created = try await connection.query("""
            INSERT INTO tov.model_versions (base_version, zval_version, method, leader) VALUES ($1, $2, $3, $4)
            RETURNING model_version
            """, [base, zvalVersion, settings.selection.method.rawValue, configuration.instance])
        let modelVersion = Int(try created.first!.get(Int32.self, 0))
        let refreshID = try await connection.query("""
            INSERT INTO tov.refreshes (model_version, zval_version, reason) VALUES ($1, $2, 'zval changed') RETURNING id
            """, [modelVersion, zvalVersion]).first!.get(Int64.self, 0)
        logger.info("refresh started: training θ_val", metadata: [
            "model_version": "\(modelVersion)", "zval_version": "\(zvalVersion)", "method": "\(settings.selection.method.rawValue)",
        ])
        let config = try await baseConfig(base, on: connection)
        let zval = try await loadTexts(Queries.validationGetAll, [], on: connection)
        let u = settings.selection.method == .B ? try await loadTexts("""
            SELECT c.prompt, c.response FROM tov.base_subset b JOIN tov.candidates c ON c.id = b.candidate_id
            WHERE b.base_version = $1 ORDER BY b.candidate_id
            """, [base], on: connection) : []
        var baseCheckpoints: [[UInt8]] = []
        for epoch in 1...config.epochs {
            baseCheckpoints.append(try await loadCheckpoint(baseVersion: base, modelVersion: nil, kind: "base", epoch: epoch, on: connection))
        }
        let theta0 = try await loadCheckpoint(baseVersion: base, modelVersion: nil, kind: "theta0", epoch: 0, on: connection)
        var trainer = TrajectoryTrainer(config: config.with(valLearningRateRatio: settings.valLearningRateRatio), logger: logger)
        trainer.shouldStop = { [stopFlag] in stopFlag.isSet }
        try await trainer.trainVal(theta0: theta0, base: baseCheckpoints, zval: zval, u: u, method: settings.selection.method) { epoch, checkpoint in
            try await self.storeCheckpoint(checkpoint, baseVersion: base, modelVersion: modelVersion, kind: "val", epoch: epoch, on: connection)
        }
        let trainedSeconds = (ContinuousClock.now - started).seconds
        metrics.refreshSeconds.set(to: trainedSeconds)
        let enqueued = try await connection.transaction { tx -> Int in
            try await tx.execute("UPDATE tov.model_versions SET status = 'scoring', trained_at = now() WHERE model_version = $1", [modelVersion])
            try await tx.execute("UPDATE tov.refreshes SET trained_at = now() WHERE id = $1", [refreshID])
            return try await tx.execute(Queries.jobEnqueueMissingScores, [modelVersion, base])
        }
        logger.info("θ_val trained; rescoring the pool", metadata: [
            "model_version": "\(modelVersion)", "rows": "\(enqueued)", "train_seconds": "\(trainedSeconds)",
        ])
        workers.signal()
    }

    /// Switches to the version being rescored once every eligible row has a score under it: marks it
    /// complete, supersedes the old one and recomputes the selection, all in one transaction.
    func finishRescoring(settings: Settings, on connection: Connection) async throws {
        let scoring = try await connection.query("SELECT model_version, base_version FROM tov.model_versions WHERE status = 'scoring'")
        guard let row = scoring.first else { return }
        let version = Int(try row.get(Int32.self, 0))
        let base = Int(try row.get(Int32.self, 1))
        let pending = try await connection.query(Queries.jobCountForVersion, [version]).first!.get(Int64.self, 0)
        guard pending == 0 else { return }
        let switched = try await connection.transaction { tx -> SelectionWriter.Change? in
            // Rows that became ready after the rescoring was enqueued: score them first.
            let missed = try await tx.execute(Queries.jobEnqueueMissingScores, [version, base])
            if missed > 0 { return nil }
            try await tx.execute("UPDATE tov.model_versions SET status = 'superseded' WHERE status = 'complete'")
            try await tx.execute("UPDATE tov.model_versions SET status = 'complete', completed_at = now() WHERE model_version = $1", [version])
            try await tx.execute("UPDATE tov.refreshes SET finished_at = now() WHERE model_version = $1", [version])
            // A new model version: φ is re-derived under the score_fn in force, then the selection switches.
            return try await SelectionWriter.update(in: tx, modelVersion: version, settings: settings.selection)
        }
        guard let change = switched else {
            workers.signal()
            return
        }
        metrics.modelVersion.set(to: Double(version))
        record(change)
        logger.info("switched to a new model version", metadata: [
            "model_version": "\(version)", "selection_version": "\(change.selectionVersion)", "size": "\(change.size)",
        ])
        // Old versions' scores are no longer read; their checkpoints stay for audit until the base changes.
        try await connection.execute("""
            DELETE FROM tov.scores s USING tov.model_versions m
            WHERE s.model_version = m.model_version AND m.status IN ('superseded', 'failed')
            """)
    }

    // MARK: - Selection

    /// Updates the selection when the complete version got new scores, lost binned rows (reported
    /// in tov.scores_removed by a trigger) or the settings changed. The check reads an index entry
    /// and two tiny tables, so an idle tick costs nothing however large the pool.
    func updateSelection(settings: Settings, on connection: Connection) async throws {
        let complete = try await connection.query("SELECT model_version FROM tov.model_versions WHERE status = 'complete'")
        guard let row = complete.first else { return }
        let version = Int(try row.get(Int32.self, 0))
        metrics.modelVersion.set(to: Double(version))
        let pending = try await connection.query("""
            SELECT EXISTS (SELECT 1 FROM tov.scores WHERE model_version = $1::int AND length_bin IS NULL)
                OR EXISTS (SELECT 1 FROM tov.scores_removed)
                OR (SELECT bin_rows IS NULL FROM tov.selection_state)
            """, [version]).first!.get(Bool.self, 0)
        let mark = "\(version)/\(settings.selection.canonicalJSON)"
        guard pending || mark != lastSelectionMark else { return }
        let change = try await connection.transaction { tx in
            try await SelectionWriter.update(in: tx, modelVersion: version, settings: settings.selection)
        }
        lastSelectionMark = mark
        record(change)
    }

    private func record(_ change: SelectionWriter.Change) {
        metrics.selectionVersion.set(to: Double(change.selectionVersion))
        metrics.selectionSize.set(to: Double(change.size))
        if change.changed {
            logger.info("selection updated", metadata: [
                "selection_version": "\(change.selectionVersion)", "size": "\(change.size)",
                "entered": "\(change.entered)", "left": "\(change.left)",
            ])
        }
    }

    // MARK: - Sweeper

    /// Re-enqueues ready rows that have no score under a live version and no job: rows a worker
    /// committed while a new version was being created, or work lost to a crash.
    func sweepIfDue(on connection: Connection) async throws {
        if let lastSweep, ContinuousClock.now - lastSweep < configuration.sweepInterval { return }
        lastSweep = .now
        for row in try await connection.query("SELECT model_version, base_version FROM tov.model_versions WHERE status IN ('complete', 'scoring')") {
            let version = Int(try row.get(Int32.self, 0))
            let base = Int(try row.get(Int32.self, 1))
            let enqueued = try await connection.execute(Queries.jobEnqueueMissingScores, [version, base])
            if enqueued > 0 {
                logger.notice("sweeper re-enqueued unscored rows", metadata: ["model_version": "\(version)", "rows": "\(enqueued)"])
                workers.signal()
            }
        }
    }

    // MARK: - Storage helpers

    func loadTexts(_ sql: String, _ params: [PQValue?], on connection: Connection) async throws -> [RowText] {
        var texts: [RowText] = []
        for row in try await connection.query(sql, params) {
            texts.append(RowText(id: Int64(texts.count), prompt: Array(try row.get(String.self, 0).utf8),
                                 response: Array(try row.get(String.self, 1).utf8)))
        }
        return texts
    }

    func baseConfig(_ base: Int, on connection: Connection) async throws -> BaseModelConfig {
        let text = try await connection.query("SELECT config::text FROM tov.base_models WHERE base_version = $1", [base]).first!.get(String.self, 0)
        return try BaseModelConfig(json: text)
    }

    func storeCheckpoint(_ bytes: [UInt8], baseVersion: Int, modelVersion: Int?, kind: String, epoch: Int,
                         on connection: Connection) async throws {
        try await connection.execute(Queries.checkpointInsert, [
            baseVersion, modelVersion.map(Int32.init), kind, epoch, bytes, SHA256.hexDigest(of: Data(bytes)),
        ])
    }

    func loadCheckpoint(baseVersion: Int, modelVersion: Int?, kind: String, epoch: Int, on connection: Connection) async throws -> [UInt8] {
        let rows = try await connection.query(Queries.checkpointGet, [baseVersion, modelVersion ?? 0, kind, epoch])
        guard let row = rows.first else {
            throw DaemonError(.checkpoint, "checkpoint \(kind) epoch \(epoch) of base model \(baseVersion) is missing; the leader will retrain it")
        }
        return try row.get([UInt8].self, 0)
    }
}

extension Duration {
    /// Seconds as a Double, for logs and metrics.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
