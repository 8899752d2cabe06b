import Foundation
import PQ
import Selection
import Surrogate
import ToVPipeline

/// The trainer's statements: base models, model versions, their checkpoints, operator requests and
/// the Z_val it trains on. Named noun+verb(+Many) after what they do, values bound as `$n`, rows read
/// by column name. Writes go through a transaction the caller fenced (``LeaderFence``).
public enum TrainingStore {
    // MARK: - The snapshot the trainer decides from

    /// Everything ``TrainerPolicy`` reads, in a handful of small queries (per-target facts in one
    /// query each for every target). `memoryProblem` is the host's verdict on the wanted surrogate (not
    /// a database fact, but part of what the rules read).
    static func snapshot(settings: Settings, memoryProblem: String?, on connection: Connection) async throws -> TrainerSnapshot {
        let counts = try await connection.query(poolCountsGet).first!
        let requests = try await connection.query(requestPendingMany).map { row in
            TrainerSnapshot.Request(id: try row.get(Int64.self, "id"),
                                    kind: TrainerSnapshot.Request.Kind(rawValue: try row.get(String.self, "kind")) ?? .refresh,
                                    target: try row.getOptional(Int32.self, "target_id").map(Int.init))
        }
        let base = try await connection.query(baseModelCurrentGet).first.map { row in
            TrainerSnapshot.Base(version: Int(try row.get(Int32.self, "base_version")), uSize: Int(try row.get(Int32.self, "u_size")),
                                 config: try BaseModelConfig(json: try row.get(String.self, "config")),
                                 poolRowsAtDraw: Int(try row.get(Int64.self, "pool_rows_at_draw")))
        }
        let lastFailure = base != nil ? nil
            : try await connection.query(baseModelLastFailureGet).first.flatMap { try $0.getOptional(String.self, "reason") }
        let wanted = BaseModelConfig(settings: settings)
        let divergedBase = try await connection.query(baseModelDivergedGet, [wanted.json, settings.uSize]).first
            .map { try $0.get(String.self, "reason") }
        var theta0: TrainerSnapshot.ImportedTheta0?
        if let name = settings.theta0 { theta0 = try await theta0Shape(name, on: connection) }
        let broken = try await brokenCheckpoints(on: connection)
        let targets = try await targetFacts(settings.targets, base: base?.version, method: settings.selection.method.rawValue,
                                            broken: broken, on: connection)
        return TrainerSnapshot(
            settings: settings,
            readyRows: Int(try counts.get(Int64.self, "ready")), validatingRows: Int(try counts.get(Int64.self, "validating")),
            pendingRequests: requests, currentBase: base, lastBaseFailure: lastFailure, divergedBase: divergedBase,
            memoryProblem: memoryProblem, theta0: theta0, targets: targets, broken: broken)
    }

    /// Each target of `targets` the database still has, with its Z_val, its version being rescored,
    /// whether its current inputs are served on `base` (by a version none of whose checkpoints are
    /// broken), a divergence on them, a live version whose Z_val signal is still to measure, its last
    /// served version and the every-target requests it answered.
    static func targetFacts(_ targets: [TargetSettings], base: Int?, method: String, broken: [TrainerSnapshot.BrokenCheckpoint],
                            on connection: Connection) async throws -> [TrainerSnapshot.Target] {
        var stored: [Int: (zval: TrainerSnapshot.Zval, scoring: Int?)] = [:]
        for row in try await connection.query(targetZvalMany) {
            stored[Int(try row.get(Int32.self, "target_id"))] = (
                TrainerSnapshot.Zval(version: try row.get(Int64.self, "zval_version"), ageSeconds: try row.get(Double.self, "age_seconds"),
                                     rows: Int(try row.get(Int64.self, "zval_rows"))),
                try row.getOptional(Int32.self, "scoring_version").map(Int.init))
        }
        var facts = targets.compactMap { t in
            stored[t.id].map { TrainerSnapshot.Target(id: t.id, name: t.name, enabled: t.enabled, settings: t.settings, zval: $0.zval,
                                                       scoringVersion: $0.scoring) }
        }
        guard !facts.isEmpty else { return [] }  // PQ sends an empty array as bytea
        let index = Dictionary(uniqueKeysWithValues: facts.enumerated().map { ($1.id, $0) })
        if let base {
            let inputs: [PQValue?] = [base, method, facts.map(\.id), facts.map(\.zval.version), facts.map(\.settings.valLearningRateRatio)]
            let brokenVersions = Set(broken.compactMap { b -> Int? in if case .version(let v, _, _) = b.owner { return v } else { return nil } })
            for row in try await connection.query(modelVersionForInputsMany, inputs)
            where !brokenVersions.contains(Int(try row.get(Int32.self, "model_version"))) {
                facts[index[Int(try row.get(Int32.self, "target_id"))]!].currentInputsServed = true
            }
            for row in try await connection.query(modelVersionDivergedMany, inputs) {
                facts[index[Int(try row.get(Int32.self, "target_id"))]!].divergedVersion = try row.get(String.self, "reason")
            }
            for row in try await connection.query(modelVersionSignalPendingMany, [base]) {
                guard let i = index[Int(try row.get(Int32.self, "target_id"))] else { continue }
                facts[i].signalPending = Int(try row.get(Int32.self, "model_version"))
            }
        }
        for row in try await connection.query(modelVersionLastServedMany) {
            guard let i = index[Int(try row.get(Int32.self, "target_id"))] else { continue }
            facts[i].lastVersion = TrainerSnapshot.LastVersion(baseVersion: Int(try row.get(Int32.self, "base_version")),
                                                               zvalVersion: try row.get(Int64.self, "zval_version"),
                                                               method: try row.get(String.self, "method"))
        }
        for row in try await connection.query(requestAnsweredMany) {
            guard let i = index[Int(try row.get(Int32.self, "target_id"))] else { continue }
            facts[i].answered.insert(try row.get(Int64.self, "id"))
        }
        return facts
    }

    static let poolCountsGet = """
        SELECT (SELECT count(*) FROM tov.ready) AS ready,
               (SELECT count(*) FROM tov.jobs WHERE model_version = 0) AS validating
        """

    static let requestPendingMany = "SELECT id, kind, target_id FROM tov.training_requests WHERE served_at IS NULL ORDER BY id"

    /// Every-target refresh requests still pending, with each target that answered them: a version of
    /// it created since the request was started (``requestStartMany`` keeps the first start) that was
    /// trained or diverged. A version failed half-trained (interrupted) answers nothing.
    static let requestAnsweredMany = """
        SELECT DISTINCT m.target_id, r.id FROM tov.training_requests r
        JOIN tov.model_versions m ON m.created_at >= r.started_at AND (m.trained_at IS NOT NULL OR m.reason LIKE 'diverged%')
        WHERE r.served_at IS NULL AND r.kind = 'refresh' AND r.target_id IS NULL
        """

    static let baseModelCurrentGet = """
        SELECT base_version, u_size, config::text AS config, coalesce(pool_rows_at_draw, 0)::bigint AS pool_rows_at_draw
        FROM tov.base_models WHERE status = 'complete' ORDER BY base_version DESC LIMIT 1
        """

    static let baseModelLastFailureGet = """
        SELECT reason FROM tov.base_models WHERE status = 'failed' AND base_version = (SELECT max(base_version) FROM tov.base_models)
        """

    /// A base model under exactly these settings ($1 config, $2 u_size) that diverged, or whose imported
    /// θ0 could not be loaded: retrying the same settings fails the same way.
    static let baseModelDivergedGet = """
        SELECT reason FROM tov.base_models
        WHERE status = 'failed' AND (reason LIKE 'diverged%' OR reason LIKE 'theta0 unusable%') AND config = $1::jsonb AND u_size = $2
        ORDER BY base_version DESC LIMIT 1
        """

    /// Each target's Z_val (version, seconds since it changed, rows) and its version being rescored.
    static let targetZvalMany = """
        SELECT t.target_id, z.version AS zval_version, extract(epoch FROM now() - z.changed_at)::float8 AS age_seconds,
               (SELECT count(*) FROM tov.validation v WHERE v.target = t.name) AS zval_rows,
               (SELECT m.model_version FROM tov.model_versions m WHERE m.target_id = t.target_id AND m.status = 'scoring') AS scoring_version
        FROM tov.targets t JOIN tov.target_zval z USING (target_id) ORDER BY t.target_id
        """

    /// The Z_val version of target $1 (none when it was dropped).
    static let targetZvalVersionGet = "SELECT version AS zval_version FROM tov.target_zval WHERE target_id = $1"

    /// Each target's inputs: $1 base, $2 method, and per target ($3 ids, $4 Z_val versions, $5
    /// val_lr_ratios) in the same order.
    static let targetInputs = """
        unnest($3::int[], $4::bigint[], $5::float8[]) AS i(target_id, zval_version, val_lr_ratio)
        """

    /// Versions in use for each target's inputs.
    static let modelVersionForInputsMany = """
        SELECT m.target_id, m.model_version FROM tov.model_versions m JOIN \(targetInputs)
            ON m.target_id = i.target_id AND m.zval_version = i.zval_version AND m.val_lr_ratio = i.val_lr_ratio
        WHERE m.base_version = $1 AND m.method = $2 AND m.status IN ('scoring', 'complete')
        """

    /// For each target, the newest version on exactly its inputs that diverged.
    static let modelVersionDivergedMany = """
        SELECT DISTINCT ON (m.target_id) m.target_id, m.reason FROM tov.model_versions m JOIN \(targetInputs)
            ON m.target_id = i.target_id AND m.zval_version = i.zval_version AND m.val_lr_ratio = i.val_lr_ratio
        WHERE m.base_version = $1 AND m.method = $2 AND m.status = 'failed' AND m.reason LIKE 'diverged%'
        ORDER BY m.target_id, m.model_version DESC
        """

    /// Each target's newest version that was ever served.
    static let modelVersionLastServedMany = """
        SELECT DISTINCT ON (target_id) target_id, base_version, zval_version, method FROM tov.model_versions
        WHERE status IN ('complete', 'superseded') ORDER BY target_id, model_version DESC
        """

    // MARK: - Checkpoints workers cannot have

    /// Live checkpoints a worker marked unloadable, and live models short of checkpoint rows (a
    /// deleted row leaves a worker nothing to mark). A version needs θ_val^1..L; the current base
    /// model θ0 and θ_bas^1..L.
    static func brokenCheckpoints(on connection: Connection) async throws -> [TrainerSnapshot.BrokenCheckpoint] {
        try await connection.query(checkpointBrokenMany).map { row in
            let base = Int(try row.get(Int32.self, "base_version"))
            let owner: TrainerSnapshot.BrokenCheckpoint.Owner
            if let version = try row.getOptional(Int32.self, "model_version") {
                owner = .version(Int(version), target: Int(try row.get(Int32.self, "target_id")),
                                 scoring: try row.get(String.self, "status") == "scoring")
            } else {
                owner = .base(base)
            }
            return .init(owner: owner, problem: try row.get(String.self, "problem"))
        }
    }

    static let checkpointBrokenMany = """
        WITH live AS (
            SELECT m.model_version, m.target_id, m.base_version, m.status::text AS status, b.epochs, 'val' AS kind, b.epochs AS needed
            FROM tov.model_versions m JOIN tov.base_models b USING (base_version)
            WHERE m.status IN ('scoring', 'complete')
            UNION ALL
            SELECT NULL, NULL, base_version, 'complete', epochs, 'base', epochs + 1
            FROM tov.base_models WHERE status = 'complete'
        ), stored AS (
            SELECT l.*,
                   (SELECT count(*) FROM tov.checkpoints c
                    WHERE c.base_version = l.base_version AND c.model_version IS NOT DISTINCT FROM l.model_version
                      AND (c.kind = 'val') = (l.kind = 'val')) AS present,
                   (SELECT string_agg(c.kind || ' epoch ' || c.epoch || ': ' || c.load_error, '; ' ORDER BY c.kind, c.epoch)
                    FROM tov.checkpoints c
                    WHERE c.base_version = l.base_version AND c.model_version IS NOT DISTINCT FROM l.model_version
                      AND c.load_error IS NOT NULL) AS load_errors
            FROM live l
        )
        SELECT model_version, target_id, base_version, status,
               coalesce(load_errors, (needed - present) || ' of ' || needed || ' checkpoints missing') AS problem
        FROM stored WHERE load_errors IS NOT NULL OR present < needed
        ORDER BY base_version, model_version NULLS FIRST
        """

    // MARK: - Repairs and interrupted work

    /// Fails what a leader left in `training` (its connection cut, the process killed): a trajectory
    /// cannot be resumed half-written. Requests it was serving stay pending (they are served only when
    /// work completes). Returns the base models and versions failed.
    static func trainingInterruptedFailMany(on tx: Connection) async throws -> (bases: Int, versions: Int) {
        (try await tx.execute(baseModelInterruptedFailMany), try await tx.execute(modelVersionInterruptedFailMany))
    }

    static let baseModelInterruptedFailMany = """
        UPDATE tov.base_models SET status = 'failed', finished_at = now(), reason = coalesce(reason, '') || ' (interrupted)'
        WHERE status = 'training'
        """
    static let modelVersionInterruptedFailMany = """
        UPDATE tov.model_versions SET status = 'failed', reason = coalesce(reason, '') || ' (interrupted)' WHERE status = 'training'
        """

    /// A version being rescored whose θ_val cannot be loaded: failed (a new one replaces it).
    static func modelVersionUnloadableFail(_ version: Int, problem: String, on tx: Connection) async throws {
        try await tx.execute(modelVersionFail, [version, "checkpoint unreadable: \(problem)"])
        try await tx.execute(checkpointLoadErrorClearMany, [version])
    }

    /// A base model whose θ0 or θ_bas cannot be loaded: it and its versions in flight fail; the
    /// complete version on it keeps serving tov.selected until a rebase replaces it.
    static func baseModelUnloadableFail(_ base: Int, problem: String, on tx: Connection) async throws {
        try await tx.execute(baseModelFail, [base, "checkpoint unreadable: \(problem)"])
        try await tx.execute(modelVersionInFlightFailMany, [base, "checkpoint unreadable"])
        try await tx.execute(checkpointBaseLoadErrorClearMany, [base])
    }

    static let checkpointLoadErrorClearMany = "UPDATE tov.checkpoints SET load_error = NULL WHERE model_version = $1"
    static let checkpointBaseLoadErrorClearMany = "UPDATE tov.checkpoints SET load_error = NULL WHERE base_version = $1 AND model_version IS NULL"

    // MARK: - Requests

    public enum RequestKind: String, Sendable { case refresh, rebase }

    /// An operator's request (`tovd refresh [--target T]`, `tovd rebase`); returns its id. Served when
    /// the work it starts completes (see ``requestServeMany``). `target` (a target id) asks for that
    /// target's refresh only; nil asks for every target (see ``TrainerPolicy``).
    public static func requestInsert(_ kind: RequestKind, target: Int? = nil, on connection: Connection) async throws -> Int64 {
        try await connection.query(requestInsertOne, [kind.rawValue, target]).first!.get(Int64.self, "id")
    }

    static let requestInsertOne = "INSERT INTO tov.training_requests (kind, target_id) VALUES ($1, $2) RETURNING id"

    /// Marks requests $1 as being worked on (status shows it); they stay pending until served. The
    /// first start is kept: an every-target request counts the versions created since then as its
    /// answers (``requestAnsweredMany``), so a later target's start must not move it.
    static let requestStartMany = "UPDATE tov.training_requests SET started_at = coalesce(started_at, now()) WHERE id = ANY($1::bigint[])"
    /// Requests $1 served by the work named $2 ('base model 3', 'model version 12').
    static let requestServeMany = """
        UPDATE tov.training_requests SET served_at = now(), served_by = $2, started_at = coalesce(started_at, now())
        WHERE id = ANY($1::bigint[]) AND served_at IS NULL
        """

    static func requestsStart(_ ids: [Int64], on tx: Connection) async throws {
        guard !ids.isEmpty else { return }  // PQ sends an empty array as bytea
        try await tx.execute(requestStartMany, [ids])
    }

    static func requestsServe(_ ids: [Int64], by work: String, on tx: Connection) async throws {
        guard !ids.isEmpty else { return }
        try await tx.execute(requestServeMany, [ids, work])
    }

    // MARK: - Base models

    struct BaseModelCreateParams {
        var uSize: Int
        var epochs: Int
        var config: BaseModelConfig
        var reason: String
        /// Seeds U's draw (the selection seed).
        var seed: String
    }

    /// A new base model in `training` with U drawn: a uniform sample of ready rows, ordered by a seeded
    /// hash so a rerun picks the same rows. Returns its version.
    static func baseModelCreate(_ p: BaseModelCreateParams, on tx: Connection) async throws -> Int {
        let version = Int(try await tx.query(baseModelInsert, [p.uSize, p.epochs, p.config.json, p.reason, p.config.theta0]).first!
            .get(Int32.self, "base_version"))
        try await tx.execute(baseSubsetDraw, [version, p.seed, p.uSize])
        return version
    }

    static let baseModelInsert = """
        INSERT INTO tov.base_models (u_size, epochs, config, reason, theta0, pool_rows_at_draw)
        VALUES ($1, $2, $3::jsonb, $4, $5, (SELECT count(*) FROM tov.ready)) RETURNING base_version
        """

    static let baseSubsetDraw = """
        INSERT INTO tov.base_subset (base_version, candidate_id)
        SELECT $1, r.candidate_id FROM tov.ready r
        ORDER BY md5($2::text || ':u:' || r.candidate_id::text) COLLATE "C", r.candidate_id
        LIMIT $3
        """

    /// Completes base model $1; older complete ones are superseded (they serve only the versions built
    /// on them until the switch).
    static func baseModelComplete(_ base: Int, on tx: Connection) async throws {
        try await tx.execute(baseModelCompleteUpdate, [base])
        try await tx.execute(baseModelSupersedeOlderMany, [base])
    }

    static let baseModelCompleteUpdate = "UPDATE tov.base_models SET status = 'complete', finished_at = now() WHERE base_version = $1"
    static let baseModelSupersedeOlderMany = "UPDATE tov.base_models SET status = 'superseded' WHERE status = 'complete' AND base_version < $1"
    static let baseModelFail = "UPDATE tov.base_models SET status = 'failed', finished_at = now(), reason = $2 WHERE base_version = $1"

    /// U of a base model, in candidate order (the order every trajectory sees it in).
    static func baseSubsetTexts(_ base: Int, on connection: Connection) async throws -> [RowText] {
        var texts: [RowText] = []
        for row in try await connection.query(baseSubsetTextMany, [base]) {
            texts.append(RowText(id: Int64(texts.count), prompt: Array(try row.get(String.self, "prompt").utf8),
                                 response: Array(try row.get(String.self, "response").utf8),
                                 source: try row.getOptional(String.self, "source")))
        }
        return texts
    }

    static let baseSubsetTextMany = """
        SELECT c.prompt, c.response, c.source FROM tov.base_subset b JOIN tov.candidates c ON c.id = b.candidate_id
        WHERE b.base_version = $1 ORDER BY b.candidate_id
        """

    /// The Z_val signal's sample (``ZvalAgreement/sampleIDs``): the first `limit` ready rows outside U
    /// of base model `base` in U's own rank order, a uniform sample of the rows the version scores.
    static func agreementSampleTexts(base: Int, seed: Int64, limit: Int, on connection: Connection) async throws -> [RowText] {
        var texts: [RowText] = []
        for row in try await connection.query(agreementSampleTextMany, [base, seed, limit]) {
            texts.append(RowText(id: Int64(texts.count), prompt: Array(try row.get(String.self, "prompt").utf8),
                                 response: Array(try row.get(String.self, "response").utf8)))
        }
        return texts
    }

    static let agreementSampleTextMany = """
        SELECT c.prompt, c.response FROM tov.ready r JOIN tov.candidates c ON c.id = r.candidate_id
        WHERE NOT EXISTS (SELECT 1 FROM tov.base_subset b WHERE b.base_version = $1 AND b.candidate_id = r.candidate_id)
        ORDER BY md5($2::text || ':u:' || r.candidate_id::text) COLLATE "C", r.candidate_id
        LIMIT $3
        """

    /// Records version `version`'s Z_val signal (NULLs when there is none to show) and each Z_val row's
    /// held-out gain; `zval` are the rows measured, their ids tov.validation's.
    static func modelVersionAgreementSet(_ version: Int, _ agreement: ZvalAgreement?, zval: [RowText], on tx: Connection) async throws {
        func finite(_ value: (ZvalAgreement) -> Double) -> Double? { agreement.map(value).flatMap { $0.isFinite ? $0 : nil } }
        try await tx.execute(modelVersionAgreementUpdate, [version, finite(\.agreement), finite(\.halves), finite(\.transfer), finite(\.helpedShare),
                                                           agreement.map { Int32($0.sampleRows) }, agreement.map { Int32($0.groups) }])
        guard let gains = agreement?.rowGains, gains.count == zval.count else { return }
        let finiteRows = zip(zval, gains).filter { $0.1.isFinite }
        try await tx.execute(validationSignalInsertMany, [version, finiteRows.map(\.0.id), finiteRows.map(\.1)])
    }

    /// Version $1's n-gram model (score_dsir's weights: Z_val's words against U's), which the workers
    /// weigh its rows by; written before the version's rows are enqueued for rescoring.
    static func modelVersionImportanceSet(_ version: Int, _ model: NgramImportance, on tx: Connection) async throws {
        try await tx.execute(modelVersionImportanceUpdate, [version, model.bytes])
    }

    static let modelVersionImportanceUpdate = "UPDATE tov.model_versions SET importance_model = $2::bytea WHERE model_version = $1::int"

    static let validationSignalInsertMany = """
        INSERT INTO tov.validation_signal (model_version, validation_id, held_out_gain)
        SELECT $1, unnest($2::bigint[]), unnest($3::float8[])
        """

    static let modelVersionAgreementUpdate = """
        UPDATE tov.model_versions SET zval_agreement = $2::float8, zval_halves = $3::float8, zval_transfer = $4::float8,
            zval_helped_share = $5::float8, zval_agreement_rows = $6, zval_groups = $7, zval_signal_measured_at = now()
        WHERE model_version = $1
        """

    /// Each target's complete version on base $1, made from the target's current Z_val, whose Z_val
    /// signal is not measured yet (``TrainerSnapshot/Target/signalPending``). A version whose Z_val
    /// changed since is left: the refresh that change causes replaces it, and its rows are gone.
    static let modelVersionSignalPendingMany = """
        SELECT m.target_id, m.model_version FROM tov.model_versions m JOIN tov.target_zval z USING (target_id)
        WHERE m.status = 'complete' AND m.base_version = $1 AND m.zval_version = z.version AND m.zval_signal_measured_at IS NULL
        """

    /// What measuring version $1's Z_val signal needs: its base model and config, the Z_val version and
    /// θ_val learning-rate ratio it was trained with, and its target's Z_val version now.
    static let modelVersionSignalInputsGet = """
        SELECT m.base_version, m.zval_version, m.val_lr_ratio, z.version AS current_zval_version
        FROM tov.model_versions m JOIN tov.target_zval z USING (target_id)
        WHERE m.model_version = $1
        """

    static func baseModelConfig(_ base: Int, on connection: Connection) async throws -> BaseModelConfig {
        try BaseModelConfig(json: try await connection.query(baseModelConfigGet, [base]).first!.get(String.self, "config"))
    }

    static let baseModelConfigGet = "SELECT config::text AS config FROM tov.base_models WHERE base_version = $1"

    // MARK: - Imported θ0s (tovd base import)

    /// A θ0 as `tovd base list` shows it.
    public struct Theta0Row: Sendable, Equatable {
        public var name: String
        public var sha256: String
        public var bytes: Int
        /// The model config of its header, as JSON (layers, width, heads, context, vocab_size).
        public var config: String
        public var importedAt: String
        public var importedBy: String
        /// Base models that started from it.
        public var baseModels: Int
    }

    public struct Theta0InsertParams: Sendable {
        public var name: String
        public var bytes: [UInt8]
        public var sha256: String
        public var configJSON: String
        public init(name: String, bytes: [UInt8], sha256: String, configJSON: String) {
            self.name = name
            self.bytes = bytes
            self.sha256 = sha256
            self.configJSON = configJSON
        }
    }

    /// Stores a checked θ0; false when the name is taken (a stored θ0 is never replaced: base models
    /// that started from it name it).
    public static func theta0Insert(_ p: Theta0InsertParams, on connection: Connection) async throws -> Bool {
        try await connection.query(theta0InsertOne, [p.name, p.bytes, p.sha256, p.configJSON]).first != nil
    }

    static let theta0InsertOne = """
        INSERT INTO tov.theta0s (name, data, sha256, config) VALUES ($1, $2, $3, $4::jsonb)
        ON CONFLICT (name) DO NOTHING RETURNING name
        """

    public static func theta0Many(on connection: Connection) async throws -> [Theta0Row] {
        try await connection.query(theta0GetMany).map { row in
            Theta0Row(name: try row.get(String.self, "name"), sha256: try row.get(String.self, "sha256"),
                      bytes: Int(try row.get(Int32.self, "bytes")), config: try row.get(String.self, "config"),
                      importedAt: try row.get(String.self, "imported_at"), importedBy: try row.get(String.self, "imported_by"),
                      baseModels: Int(try row.get(Int64.self, "base_models")))
        }
    }

    static let theta0GetMany = """
        SELECT t.name, t.sha256, octet_length(t.data) AS bytes, t.config::text AS config, t.imported_at::text AS imported_at,
               t.imported_by, (SELECT count(*) FROM tov.base_models b WHERE b.theta0 = t.name) AS base_models
        FROM tov.theta0s t ORDER BY t.imported_at, t.name
        """

    /// The stored θ0 `name` with its model's shape, or nil when none has that name.
    static func theta0Shape(_ name: String, on connection: Connection) async throws -> TrainerSnapshot.ImportedTheta0? {
        guard let row = try await connection.query(theta0ConfigGet, [name]).first else { return nil }
        let config = try? JSONDecoder().decode(ModelConfig.self, from: Data(try row.get(String.self, "config").utf8))
        return .init(name: name, shape: config.map {
            Settings.SurrogateShape(layers: $0.layers, width: $0.width, heads: $0.heads, context: $0.context, vocab: $0.vocabSize)
        })
    }

    static let theta0ConfigGet = "SELECT config::text AS config FROM tov.theta0s WHERE name = $1"

    /// The checkpoint bytes of θ0 `name` and the SHA-256 recorded at import, or nil.
    static func theta0Checkpoint(_ name: String, on connection: Connection) async throws -> (bytes: [UInt8], sha256: String)? {
        guard let row = try await connection.query(theta0DataGet, [name]).first else { return nil }
        return (try row.get([UInt8].self, "data"), try row.get(String.self, "sha256"))
    }

    static let theta0DataGet = "SELECT data, sha256 FROM tov.theta0s WHERE name = $1"

    // MARK: - Model versions

    struct ModelVersionCreateParams {
        var target: Int
        var base: Int
        var zvalVersion: Int64
        var method: String
        var valLearningRateRatio: Double
        var reason: String
        var leader: String
    }

    /// A new version of target `p.target` in `training` and its refresh row. Returns (version, refresh id).
    static func modelVersionCreate(_ p: ModelVersionCreateParams, on tx: Connection) async throws -> (version: Int, refresh: Int64) {
        let version = Int(try await tx.query(modelVersionInsert, [p.base, p.zvalVersion, p.method, p.valLearningRateRatio, p.reason, p.leader,
                                                                  p.target])
            .first!.get(Int32.self, "model_version"))
        let refresh = try await tx.query(refreshInsert, [version, p.zvalVersion, p.reason]).first!.get(Int64.self, "id")
        return (version, refresh)
    }

    static let modelVersionInsert = """
        INSERT INTO tov.model_versions (base_version, zval_version, method, val_lr_ratio, reason, leader, target_id)
        VALUES ($1, $2, $3, $4::float8, $5, $6, $7) RETURNING model_version
        """
    static let refreshInsert = "INSERT INTO tov.refreshes (model_version, zval_version, reason) VALUES ($1, $2, $3) RETURNING id"
    static let modelVersionFail = "UPDATE tov.model_versions SET status = 'failed', reason = $2 WHERE model_version = $1"
    static let modelVersionInFlightFailMany = """
        UPDATE tov.model_versions SET status = 'failed', reason = $2 WHERE base_version = $1 AND status IN ('training', 'scoring')
        """

    /// θ_val of `version` is trained: enqueue every ready row it has no score for and hand the version
    /// to the workers. Returns the rows enqueued.
    static func modelVersionStartScoring(_ version: Int, base: Int, refresh: Int64, on tx: Connection) async throws -> Int {
        let enqueued = try await tx.execute(Queries.jobEnqueueMissingScores, [version, base])
        try await tx.execute(modelVersionScoringUpdate, [version, enqueued])
        try await tx.execute(refreshTrainedUpdate, [refresh])
        return enqueued
    }

    static let modelVersionScoringUpdate = """
        UPDATE tov.model_versions SET status = 'scoring', trained_at = now(), rescore_total = $2 WHERE model_version = $1
        """
    static let refreshTrainedUpdate = "UPDATE tov.refreshes SET trained_at = now() WHERE id = $1"

    // MARK: - Checkpoints

    struct CheckpointInsertParams {
        var base: Int
        var modelVersion: Int?
        var kind: String
        var epoch: Int
        var bytes: [UInt8]
    }

    static func checkpointInsert(_ p: CheckpointInsertParams, on tx: Connection) async throws {
        try await tx.execute(Queries.checkpointInsert, [
            p.base, p.modelVersion.map(Int32.init), p.kind, p.epoch, p.bytes, SHA256.hexDigest(of: Data(p.bytes)),
        ])
    }

    /// θ0 and θ_bas^1..L of a base model as stored: (name, bytes, sha256) in kind, epoch order.
    static func baseCheckpointMany(_ base: Int, on connection: Connection) async throws -> [(name: String, bytes: [UInt8], sha256: String)] {
        try await connection.query(baseCheckpointGetMany, [base]).map { row in
            ("\(try row.get(String.self, "kind")) epoch \(try row.get(Int32.self, "epoch"))",
             try row.get([UInt8].self, "data"), try row.get(String.self, "sha256"))
        }
    }

    static let baseCheckpointGetMany = """
        SELECT kind, epoch, data, sha256 FROM tov.checkpoints WHERE base_version = $1 AND model_version IS NULL ORDER BY kind, epoch
        """

    // MARK: - Z_val

    /// A Z_val row: its text when both fields fit `max_text_bytes`, else only its largest field's size
    /// (a 100 MB row is refused without being fetched).
    struct ValidationRow {
        var id: Int64
        var text: (prompt: [UInt8], response: [UInt8])?
        var largestField: Int
    }

    /// The Z_val rows of target `target` (its name), in id order.
    static func validationSizedMany(target: String, maxTextBytes: Int, on connection: Connection) async throws -> [ValidationRow] {
        try await connection.query(validationSizedGetMany, [maxTextBytes, target]).map { row in
            let prompt = try row.getOptional([UInt8].self, "prompt")
            let response = try row.getOptional([UInt8].self, "response")
            return ValidationRow(id: try row.get(Int64.self, "id"),
                                 text: prompt.flatMap { p in response.map { (p, $0) } },
                                 largestField: Int(try row.get(Int32.self, "largest_field")))
        }
    }

    static let validationSizedGetMany = """
        SELECT id, greatest(octet_length(prompt), octet_length(response)) AS largest_field,
               CASE WHEN octet_length(prompt) <= $1 AND octet_length(response) <= $1 THEN convert_to(prompt, 'UTF8') END AS prompt,
               CASE WHEN octet_length(prompt) <= $1 AND octet_length(response) <= $1 THEN convert_to(response, 'UTF8') END AS response
        FROM tov.validation WHERE target = $2 ORDER BY id
        """

    /// Replaces target `target`'s rows of tov.validation_rejects with this refresh's verdicts
    /// (validation id, reason, detail); other targets' verdicts stay until their own refresh.
    static func validationRejectsReplace(target: String, _ rejected: [(Int64, String, String)], on tx: Connection) async throws {
        try await tx.execute(validationRejectDeleteMany, [target])
        guard !rejected.isEmpty else { return }
        try await tx.execute(validationRejectInsertMany, [rejected.map(\.0), rejected.map(\.1), rejected.map(\.2)])
    }

    static let validationRejectDeleteMany = """
        DELETE FROM tov.validation_rejects x USING tov.validation v WHERE v.id = x.validation_id AND v.target = $1
        """
    static let validationRejectInsertMany = """
        INSERT INTO tov.validation_rejects (validation_id, reason, detail)
        SELECT * FROM unnest($1::bigint[], $2::tov.reject_reason[], $3::text[]) ON CONFLICT DO NOTHING
        """

    // MARK: - Activity

    struct ActivitySetParams {
        var activity: String
        var reason: String?
        var detail: String?
        var done: Int?
        var total: Int?
        var unit: String?
        var epoch: Int64
    }

    /// Writes tov.leader_activity, fenced by its own WHERE clause rather than a transaction (see
    /// ``ActivityWriter``). started_at and done_at_start move only when the activity changes, so a rate
    /// is progress since then over the time it took.
    static func activitySet(_ p: ActivitySetParams, on connection: Connection) async throws {
        try await connection.execute(leaderActivitySet, [
            p.activity, p.reason, p.detail, p.done.map(Int64.init), p.total.map(Int64.init), p.unit, p.epoch,
        ])
    }

    static let leaderActivitySet = """
        UPDATE tov.leader_activity SET
            started_at = CASE WHEN activity IS DISTINCT FROM $1 OR reason IS DISTINCT FROM $2 THEN now() ELSE started_at END,
            done_at_start = CASE WHEN activity IS DISTINCT FROM $1 OR reason IS DISTINCT FROM $2 THEN $4 ELSE done_at_start END,
            activity = $1, reason = $2, detail = $3, done = $4, total = $5, unit = $6, updated_at = now()
        WHERE EXISTS (SELECT 1 FROM tov.leader WHERE epoch = $7 AND lease_until > clock_timestamp())
        """
}
