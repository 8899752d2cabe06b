import PQ
import Selection

/// Recomputes the selection in SQL and switches `tov.selected` to it in one transaction.
///
/// The query is the SQL twin of `Selection.select(_:settings:)`, the Swift reference: the same
/// equal-count length bins (`ntile` over (tokens, id)), the same per-bin quotas, the same tie-breaks
/// (score desc, id asc) and the same random order (`md5(seed:id)`, byte order). Postgres does the
/// sorting, so the daemon's memory does not grow with the pool. A property test checks that the two
/// agree after arbitrary sequences of inserts, scores, settings changes and restarts.
public enum SelectionWriter {
    public struct Change: Sendable, Equatable {
        public var selectionVersion: Int64
        public var size: Int
        public var entered: Int
        public var left: Int
        public var changed: Bool
    }

    /// One selection update as the leader runs it after new scores, inside the caller's transaction:
    /// φ is re-derived first if `score_fn` changed since the last update (that reads every score
    /// row, so not on every update: workers write φ under the `score_fn` they read with a share
    /// lock, see Queries.scoreFunctionLock), then the selection is recomputed and switched.
    public static func update(in tx: Connection, modelVersion: Int, settings: SelectionSettings) async throws -> Change {
        let function = settings.scoreFunction.rawValue
        if try await tx.query(Queries.scoreFunctionMayDiffer, [modelVersion, function]).first?.get(Bool.self, 0) ?? true {
            try await tx.execute(Queries.scoreRecomputeForFunction, [modelVersion, function])
        }
        return try await recompute(in: tx, modelVersion: modelVersion, settings: settings)
    }

    /// Computes the selection for `modelVersion` under `policy` into the temp table `selection_next`.
    /// $1 model version, $2 budget rows (or NULL), $3 budget fraction (or NULL), $4 bins, $5 seed.
    ///
    /// Every window function is a sort of the whole scored pool, so the query holds only those the
    /// policy needs: the length bins (always: `length_bin` is stored for every selected row) and
    /// one ranking. The SQL varies only by the policy's fixed text, never by user values.
    static func computeNext(policy: Policy) -> String {
        let rank: String, quota: String
        switch policy {
        case .scoreRandom:
            rank = "row_number() OVER (PARTITION BY b.bin ORDER BY b.score DESC, b.id)"
            quota = "(budget.n / 2) / $4::int + CASE WHEN r.bin < (budget.n / 2) % $4::int THEN 1 ELSE 0 END"
        case .scoreOnly:
            rank = "row_number() OVER (PARTITION BY b.bin ORDER BY b.score DESC, b.id)"
            quota = "budget.n / $4::int + CASE WHEN r.bin < budget.n % $4::int THEN 1 ELSE 0 END"
        case .scoreOnlyUnbinned:
            rank = "row_number() OVER (ORDER BY b.score DESC, b.id)"
            quota = "budget.n"
        case .uncertainty:
            rank = "row_number() OVER (ORDER BY b.uncertainty DESC, b.id)"
            quota = "budget.n"
        case .random:
            rank = "0"
            quota = "-1"  // no row is taken by score
        }
        let randomHalf = policy == .scoreRandom || policy == .random
        return """
            INSERT INTO selection_next (candidate_id, score, reason, length_bin)
            WITH eligible AS (
                SELECT s.candidate_id AS id, s.score, s.uncertainty, s.tokens AS length
                FROM tov.scores s WHERE s.model_version = $1::int
            ), budget AS (
                SELECT CASE WHEN $2::bigint IS NOT NULL THEN least($2::bigint, count(*))
                            ELSE least(count(*), floor($3::float8 * count(*))::bigint) END AS n
                FROM eligible
            ), ranked AS (
                SELECT b.*, \(rank) AS rank
                FROM (SELECT e.*, ntile($4::int) OVER (ORDER BY e.length, e.id) - 1 AS bin FROM eligible e) b
            ), score_part AS (
                SELECT r.id, r.score, 'score'::text AS reason, r.bin
                FROM ranked r CROSS JOIN budget
                WHERE r.rank <= \(quota)
            ), random_part AS (
                SELECT r.id, r.score, 'random'::text AS reason, r.bin
                FROM ranked r
                WHERE \(randomHalf) AND NOT EXISTS (SELECT 1 FROM score_part p WHERE p.id = r.id)
                ORDER BY md5($5::text || ':' || r.id::text) COLLATE "C", r.id
                LIMIT greatest((SELECT n FROM budget) - (SELECT count(*) FROM score_part), 0)
            )
            SELECT * FROM score_part UNION ALL SELECT * FROM random_part
            """
    }

    static let createNext = """
        CREATE TEMP TABLE IF NOT EXISTS selection_next (
            candidate_id bigint PRIMARY KEY, score double precision, reason text, length_bin integer
        ) ON COMMIT DELETE ROWS
        """

    /// Locks the state row (one recompute at a time) and tells whether the settings differ ($1).
    static let stateLock = """
        SELECT selection_version, model_version, settings IS DISTINCT FROM $1::jsonb
        FROM tov.selection_state FOR UPDATE
        """

    static let removeLeaving = """
        WITH gone AS (
            DELETE FROM tov.selection_items i
            WHERE NOT EXISTS (SELECT 1 FROM selection_next n WHERE n.candidate_id = i.candidate_id)
            RETURNING i.candidate_id, i.reason
        )
        INSERT INTO tov.selection_history (selection_version, candidate_id, change, reason, model_version)
        SELECT $1, candidate_id, 'out', reason, $2 FROM gone
        """

    static let insertEntering = """
        WITH added AS (
            INSERT INTO tov.selection_items (candidate_id, score, reason, length_bin)
            SELECT n.candidate_id, n.score, n.reason, n.length_bin FROM selection_next n
            WHERE NOT EXISTS (SELECT 1 FROM tov.selection_items i WHERE i.candidate_id = n.candidate_id)
            RETURNING candidate_id, reason
        )
        INSERT INTO tov.selection_history (selection_version, candidate_id, change, reason, model_version)
        SELECT $1, candidate_id, 'in', reason, $2 FROM added
        """

    static let updateStaying = """
        UPDATE tov.selection_items i SET score = n.score, reason = n.reason, length_bin = n.length_bin
        FROM selection_next n
        WHERE n.candidate_id = i.candidate_id
          AND (i.score, i.reason, i.length_bin) IS DISTINCT FROM (n.score, n.reason, n.length_bin)
        """

    static let stateUpdate = """
        UPDATE tov.selection_state SET selection_version = $1, model_version = $2, settings = $3::jsonb, computed_at = now()
        """

    /// Recomputes the selection of `modelVersion` under `settings` and switches to it, all inside the
    /// caller's transaction `tx`. The version number goes up only when the selected set changed.
    static func recompute(in tx: Connection, modelVersion: Int, settings: SelectionSettings) async throws -> Change {
        let settingsJSON = settings.canonicalJSON
        let state = try await tx.query(stateLock, [settingsJSON])
        guard let row = state.first else { throw DaemonError(.database, "tov.selection_state is empty; run `tovd migrate up`") }
        let current = try row.get(Int64.self, 0)
        let previousModel = row.isNull(1) ? nil : Int(try row.get(Int32.self, 1))
        let settingsChanged = try row.get(Bool.self, 2)

        try await tx.execute(createNext)
        try await tx.execute("TRUNCATE selection_next")
        let (rows, fraction): (Int?, Double?) = switch settings.budget {
        case .rows(let n): (n, nil)
        case .fraction(let f): (nil, f)
        }
        let size = try await tx.execute(computeNext(policy: settings.policy), [
            modelVersion, rows.map(Int64.init), fraction, settings.bins, String(settings.seed),
        ])
        let next = current + 1
        let left = try await tx.execute(removeLeaving, [next, modelVersion])
        let entered = try await tx.execute(insertEntering, [next, modelVersion])
        let updated = try await tx.execute(updateStaying)
        let changed = left + entered + updated > 0 || previousModel != modelVersion || settingsChanged
        let version = changed ? next : current
        try await tx.execute(stateUpdate, [version, modelVersion, settingsJSON])
        return Change(selectionVersion: version, size: size, entered: entered, left: left, changed: changed)
    }
}

extension SelectionSettings {
    /// The settings the selection was computed with, as stored in `tov.selection_state.settings`.
    var canonicalJSON: String {
        let budgetJSON: String = switch budget {
        case .rows(let n): "{\"rows\":\(n)}"
        case .fraction(let f): "{\"fraction\":\(f)}"
        }
        return "{\"bins\":\(bins),\"budget\":\(budgetJSON),\"policy\":\"\(policy.rawValue)\",\"score_fn\":\"\(scoreFunction.rawValue)\",\"seed\":\(seed)}"
    }
}
