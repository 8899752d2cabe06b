import PQ

/// The statements of `tovd bench` set-up and measurement (Sources/tovd/Tovd+Bench*.swift): fixtures
/// without a model, synthetic scored rows, the planner's statistics, and the timings the benches read
/// back. In the store, not in TovTesting, because the benches ship in the tovd binary, which does not
/// link the test support; none of them runs in the daemon. Statements the daemon already names (the
/// trainer's enqueue, the keeper's switch, import's COPY) are reused, not repeated here.
public enum BenchQueries {
    // MARK: - Fixtures

    /// A complete base model without U or checkpoints and model version 1 on it, for the benches that
    /// write scores without a model.
    public static func modelVersionFixtureInsert(epochs: Int, on connection: Connection) async throws {
        try await connection.transaction { tx in
            try await tx.execute("INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (0, $1, '{}', 'complete')", [epochs])
            try await tx.execute("INSERT INTO tov.model_versions (base_version, zval_version, method, status) VALUES (1, 1, 'A', 'complete')")
        }
    }

    /// A new model version on base model 1 being rescored, with a job for every ready row, enqueued as
    /// the trainer enqueues a refresh. Returns the version.
    public static func modelVersionScoringStart(on connection: Connection) async throws -> Int {
        let version = Int(try await connection.query("""
            INSERT INTO tov.model_versions (base_version, zval_version, method, status)
            VALUES (1, (SELECT count(*) FROM tov.model_versions) + 1, 'A', 'scoring') RETURNING model_version
            """).first!.get(Int32.self, "model_version"))
        try await connection.execute(Queries.jobEnqueueMissingScores, [version, 1])
        return version
    }

    /// Settings as (key, JSON value) pairs, in one statement.
    public static func settingSetMany(_ settings: [(key: String, value: String)], on connection: Connection) async throws {
        try await connection.execute("""
            UPDATE tov.settings s SET value = f.value::jsonb
            FROM unnest($1::text[], $2::text[]) AS f(key, value) WHERE s.key = f.key
            """, [settings.map(\.key), settings.map(\.value)])
    }

    // MARK: - Synthetic scored rows

    public struct ScoredRowInsertManyParams: Sendable {
        /// How a synthetic row's response length (tokens) is drawn.
        public enum Lengths: Sendable {
            /// Uniform in 1–300, drawn per row.
            case random
            /// 1–300 from the row's id (``tokensFromID``), so every version gives a row the same
            /// length, as the real tokenizer would.
            case fromID
        }

        public var rows: Int
        public var modelVersion: Int
        public var lengths: Lengths

        public init(rows: Int, modelVersion: Int, lengths: Lengths) {
            self.rows = rows
            self.modelVersion = modelVersion
            self.lengths = lengths
        }
    }

    /// A row's response length in tokens, 1–300, from its id (SQL over a column named `id`).
    static let tokensFromID = "1 + (id * 7919) % 300"

    /// `rows` new candidates, ready and scored under `modelVersion` in one statement: random losses
    /// around 3 nats, φ computed by tov.phi as the workers do (so the leader has nothing to
    /// re-derive), ψ uniform in (-1, 0].
    public static func scoredRowInsertMany(_ p: ScoredRowInsertManyParams, on connection: Connection) async throws {
        guard p.rows > 0 else { return }
        try await connection.execute("""
            WITH new AS (
                INSERT INTO tov.candidates (prompt, response, source)
                SELECT 'synthetic prompt', 'synthetic response', 'bench' FROM generate_series(1, $1::int)
                RETURNING id
            ), ready AS (
                INSERT INTO tov.ready (candidate_id, prompt_bytes, response_bytes) SELECT id, 16, 18 FROM new
            ), losses AS (
                SELECT id, ARRAY[3 + random(), 3 + random()]::real[] AS base, ARRAY[3 + random(), 3 + random()]::real[] AS val,
                       (-random())::real AS uncertainty,
                       CASE WHEN $3::bool THEN \(tokensFromID) ELSE 1 + floor(random() * 300)::int END AS tokens
                FROM new
            )
            INSERT INTO tov.scores (candidate_id, model_version, score, base_loss, val_loss, base_losses, val_losses, uncertainty, tokens)
            SELECT id, $2::int, tov.phi(base, val, 'improvement'), (base[1] + base[2]) / 2, (val[1] + val[2]) / 2,
                   base, val, uncertainty, tokens
            FROM losses
            """, [p.rows, p.modelVersion, p.lengths == .fromID])
    }

    public struct ScoreInsertManyParams: Sendable {
        public var ids: [Int64]
        public var modelVersion: Int

        public init(ids: [Int64], modelVersion: Int) {
            self.ids = ids
            self.modelVersion = modelVersion
        }
    }

    /// A worker's commit with synthetic losses: deletes the rows' jobs under `modelVersion` and
    /// inserts their scores (lengths ``tokensFromID``), in one transaction.
    public static func scoreInsertMany(_ p: ScoreInsertManyParams, on connection: Connection) async throws {
        try await connection.transaction { tx in
            try await tx.execute("""
                DELETE FROM tov.jobs j USING unnest($1::bigint[]) AS f(id)
                WHERE j.candidate_id = f.id AND j.model_version = $2::int
                """, [p.ids, p.modelVersion])
            try await tx.execute("""
                INSERT INTO tov.scores (candidate_id, model_version, score, base_loss, val_loss, base_losses, val_losses, uncertainty, tokens)
                SELECT id, $2::int, tov.phi(base, val, 'improvement'), (base[1] + base[2]) / 2, (val[1] + val[2]) / 2, base, val, -random(), \(tokensFromID)
                FROM unnest($1::bigint[]) AS f(id)
                CROSS JOIN LATERAL (SELECT ARRAY[3 + random(), 3 + random()]::real[] AS base,
                                           ARRAY[3 + random(), 3 + random()]::real[] AS val) l
                """, [p.ids, p.modelVersion])
        }
    }

    /// Up to `limit` queued rows of `modelVersion`, in claim order.
    public static func jobCandidateMany(modelVersion: Int, limit: Int, on connection: Connection) async throws -> [Int64] {
        try await connection.query("""
            SELECT candidate_id FROM tov.jobs WHERE model_version = $1::int
            ORDER BY model_version, enqueued_at, candidate_id LIMIT $2::int FOR UPDATE SKIP LOCKED
            """, [modelVersion, limit]).map { try $0.get(Int64.self, "candidate_id") }
    }

    /// Empties the queue (the fixtures' rows are scored already).
    public static func jobDeleteAll(on connection: Connection) async throws {
        try await connection.simpleQuery("TRUNCATE tov.jobs")
    }

    public static func scoreCount(modelVersion: Int, on connection: Connection) async throws -> Int {
        Int(try await connection.query("SELECT count(*) AS n FROM tov.scores WHERE model_version = $1::int", [modelVersion]).first!.get(Int64.self, "n"))
    }

    public static func candidateCount(on connection: Connection) async throws -> Int {
        Int(try await connection.query("SELECT count(*) AS n FROM tov.candidates").first!.get(Int64.self, "n"))
    }

    /// One row into the pool, as a client inserts it. Returns its id.
    public static func candidateInsert(prompt: String, response: String, on connection: Connection) async throws -> Int64 {
        try await connection.query("INSERT INTO tov.candidates (prompt, response) VALUES ($1, $2) RETURNING id", [prompt, response])
            .first!.get(Int64.self, "id")
    }

    /// When each of `ids` was scored (epoch seconds, database clock), for the rows scored so far.
    public static func scoredAtMany(ids: [Int64], on connection: Connection) async throws -> [Int64: Double] {
        var scoredAt: [Int64: Double] = [:]
        for row in try await connection.query("""
            SELECT candidate_id, extract(epoch FROM scored_at)::float8 AS scored_at FROM tov.scores WHERE candidate_id = ANY($1)
            """, [ids]) {
            scoredAt[try row.get(Int64.self, "candidate_id")] = try row.get(Double.self, "scored_at")
        }
        return scoredAt
    }

    // MARK: - Selection

    /// When the target `default`'s selection was last computed (epoch seconds, database clock); every
    /// update sets it.
    public static func selectionComputedAtGet(on connection: Connection) async throws -> Double? {
        try await connection.query("""
            SELECT extract(epoch FROM computed_at)::float8 AS computed_at FROM tov.selection_state WHERE target_id = tov.default_target_id()
            """)
            .first?.getOptional(Double.self, "computed_at")
    }

    /// Forgets the stored bin counts, so the next update re-bins every row (as after a model switch, a
    /// change of bins or seed, or a TRUNCATE of tov.scores).
    public static func selectionBinCountsForget(on connection: Connection) async throws {
        try await connection.execute("UPDATE tov.selection_state SET bin_rows = NULL")
    }

    // MARK: - Timings of a daemon run

    public struct BootstrapTimings: Sendable {
        public var baseTrainSeconds: Double
        public var valTrainSeconds: Double
        public var burnSeconds: Double
        public var burnRows: Int
        public var burnTokens: Int
        /// From the switch to the Z_val signal's measurement (nil until it is measured).
        public var signalSeconds: Double?
        /// From the base model's start to the first complete selection: the three stages above.
        public var totalSeconds: Double { baseTrainSeconds + valTrainSeconds + burnSeconds }
    }

    /// The target `default`'s complete version: θ0 + base trajectory, θ_val and burn-down times, with
    /// the rows and response tokens it scored.
    public static func bootstrapTimingsGet(on connection: Connection) async throws -> BootstrapTimings {
        let row = try await connection.query("""
            SELECT extract(epoch FROM b.finished_at - b.created_at)::float8 AS base_train_seconds,
                   extract(epoch FROM m.trained_at - b.finished_at)::float8 AS val_train_seconds,
                   extract(epoch FROM m.completed_at - m.trained_at)::float8 AS burn_seconds,
                   extract(epoch FROM m.zval_signal_measured_at - m.completed_at)::float8 AS signal_seconds,
                   (SELECT count(*) FROM tov.scores WHERE model_version = m.model_version) AS burn_rows,
                   (SELECT coalesce(sum(tokens), 0) FROM tov.scores WHERE model_version = m.model_version) AS burn_tokens
            FROM tov.model_versions m JOIN tov.base_models b USING (base_version)
            WHERE m.status = 'complete' AND m.target_id = tov.default_target_id()
            """).first!
        return BootstrapTimings(
            baseTrainSeconds: try row.get(Double.self, "base_train_seconds"), valTrainSeconds: try row.get(Double.self, "val_train_seconds"),
            burnSeconds: try row.get(Double.self, "burn_seconds"), burnRows: Int(try row.get(Int64.self, "burn_rows")),
            burnTokens: Int(try row.get(Int64.self, "burn_tokens")), signalSeconds: try row.getOptional(Double.self, "signal_seconds"))
    }

    public struct RefreshTimings: Sendable {
        public var trainSeconds: Double
        public var rescoreSeconds: Double
        /// Scores under the complete version.
        public var rescored: Int
    }

    /// The last refresh's θ_val and rescoring times (the benches that read it have one target).
    public static func refreshTimingsGet(on connection: Connection) async throws -> RefreshTimings {
        let row = try await connection.query("""
            SELECT extract(epoch FROM trained_at - started_at)::float8 AS train_seconds,
                   extract(epoch FROM finished_at - trained_at)::float8 AS rescore_seconds,
                   (SELECT count(*) FROM tov.scores s JOIN tov.model_versions m USING (model_version)
                    WHERE m.status = 'complete' AND m.target_id = tov.default_target_id()) AS rescored
            FROM tov.refreshes ORDER BY id DESC LIMIT 1
            """).first!
        return RefreshTimings(trainSeconds: try row.get(Double.self, "train_seconds"), rescoreSeconds: try row.get(Double.self, "rescore_seconds"),
                              rescored: Int(try row.get(Int64.self, "rescored")))
    }

    // MARK: - Several targets (tovd bench targets)

    /// A new target with its Z_val, in one transaction.
    public static func targetWithZvalInsert(name: String, prompts: [String], responses: [String], on connection: Connection) async throws {
        try await connection.transaction { tx in
            try await tx.execute("INSERT INTO tov.targets (name) VALUES ($1)", [name])
            try await validationInsertMany(target: name, prompts: prompts, responses: responses, on: tx)
        }
    }

    /// Z_val rows of an existing target.
    public static func validationInsertMany(target: String, prompts: [String], responses: [String], on connection: Connection) async throws {
        try await connection.execute("""
            INSERT INTO tov.validation (target, prompt, response) SELECT $1, p, r FROM unnest($2::text[], $3::text[]) AS t(p, r)
            """, [target, prompts, responses])
    }

    public struct TargetsSettled: Sendable {
        public var targets: Int
        /// Targets whose complete version is trained on their current Z_val, with nothing in flight.
        public var settled: Int
        /// Jobs left in the queue, new rows and rescoring together.
        public var jobs: Int
    }

    public static func targetsSettledGet(on connection: Connection) async throws -> TargetsSettled {
        let row = try await connection.query("""
            SELECT count(*) AS targets,
                   count(*) FILTER (WHERE model_version IS NOT NULL AND next_model_version IS NULL AND zval_current) AS settled,
                   (SELECT count(*) FROM tov.jobs) AS jobs
            FROM tov.target_status
            """).first!
        return TargetsSettled(targets: Int(try row.get(Int64.self, "targets")), settled: Int(try row.get(Int64.self, "settled")),
                              jobs: Int(try row.get(Int64.self, "jobs")))
    }

    public struct NewRowsScored: Sendable {
        /// New rows with a score under every complete version.
        public var rows: Int
        public var scores: Int
        /// Base-loss rows of the new rows (one per row per base model when the base pass is shared).
        public var baseLosses: Int
        /// From the first new row's insert to the last score (database clock).
        public var seconds: Double
    }

    /// How far the rows with ids above `afterID` are scored under the complete versions.
    public static func newRowsScoredGet(afterID: Int64, on connection: Connection) async throws -> NewRowsScored {
        let row = try await connection.query("""
            WITH live AS (SELECT model_version FROM tov.model_versions WHERE status = 'complete'),
            scored AS (
                SELECT s.candidate_id, count(*) AS n, max(s.scored_at) AS last
                FROM tov.scores s JOIN live USING (model_version) WHERE s.candidate_id > $1 GROUP BY s.candidate_id
            )
            SELECT (SELECT count(*) FROM scored WHERE n = (SELECT count(*) FROM live)) AS rows,
                   (SELECT coalesce(sum(n), 0)::bigint FROM scored) AS scores,
                   (SELECT count(*) FROM tov.base_losses WHERE candidate_id > $1) AS base_losses,
                   coalesce(extract(epoch FROM (SELECT max(last) FROM scored) - (SELECT min(created_at) FROM tov.candidates WHERE id > $1))::float8, 0)
                       AS seconds
            """, [afterID]).first!
        return NewRowsScored(rows: Int(try row.get(Int64.self, "rows")), scores: Int(try row.get(Int64.self, "scores")),
                             baseLosses: Int(try row.get(Int64.self, "base_losses")), seconds: try row.get(Double.self, "seconds"))
    }

    public static func candidateMaxIDGet(on connection: Connection) async throws -> Int64 {
        try await connection.query("SELECT coalesce(max(id), 0) AS id FROM tov.candidates").first!.get(Int64.self, "id")
    }

    // MARK: - The planner and the server

    /// Which tables ``statisticsRefresh(_:vacuum:on:)`` analyzes.
    public enum StatisticsTables: String, Sendable {
        case all = ""
        case scoresAndCandidates = " tov.scores, tov.candidates"
        case scoresAndJobs = " tov.scores, tov.jobs"
        case jobsAndCandidates = " tov.jobs, tov.candidates"
    }

    /// ANALYZE (after VACUUM when `vacuum`), as autovacuum would run it. The statement is built from
    /// the fixed texts above only.
    public static func statisticsRefresh(_ tables: StatisticsTables, vacuum: Bool, on connection: Connection) async throws {
        try await connection.simpleQuery((vacuum ? "VACUUM ANALYZE" : "ANALYZE") + tables.rawValue)
    }

    /// Dead tuples of tov.jobs as the statistics collector last counted them.
    public static func jobDeadTupleCountGet(on connection: Connection) async throws -> Int64 {
        try await connection.query("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'tov.jobs'::regclass").first?
            .get(Int64.self, "n_dead_tup") ?? 0
    }

    /// Seeds this session's random(), so the synthetic rows are the same on every run.
    public static func randomSeedSet(_ seed: Double, on connection: Connection) async throws {
        try await connection.query("SELECT setseed($1::float8)", [seed])
    }

    /// The server process of this connection.
    public static func backendPidGet(on connection: Connection) async throws -> Int32 {
        try await connection.query("SELECT pg_backend_pid() AS pid").first!.get(Int32.self, "pid")
    }

    /// Loads auto_explain in this session with plans logged with actual rows, timing off; superuser
    /// only, as a bench's own cluster is. Nothing is logged until ``autoExplainMinDurationSet(milliseconds:on:)``.
    public static func autoExplainLoad(on connection: Connection) async throws {
        try await connection.simpleQuery("""
            LOAD 'auto_explain';
            SET auto_explain.log_min_duration = -1; SET auto_explain.log_analyze = on;
            SET auto_explain.log_timing = off;
            """)
    }

    /// Logs the plan of every statement that runs at least `milliseconds` (-1: none).
    public static func autoExplainMinDurationSet(milliseconds: Int, on connection: Connection) async throws {
        try await connection.query("SELECT set_config('auto_explain.log_min_duration', $1, false)", [String(milliseconds)])
    }
}
