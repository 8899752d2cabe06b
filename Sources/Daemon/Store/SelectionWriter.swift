import PQ
import Selection

/// Updates a target's selection in SQL and switches it (`tov.selections`, `tov.selected` for the
/// target `default`) to the new set in one transaction.
///
/// The target is the model version's (tov.model_versions.target_id): a version belongs to one
/// target, so `update(in:modelVersion:settings:)` needs no second name for it, and every statement
/// on tov.selection_state, selection_items and selection_history below is restricted to it.
///
/// The result is that of `Selection.select(_:settings:)`, the Swift reference: the same equal-count
/// length bins (`ntile` over (tokens, id)), the same per-bin quotas, the same tie-breaks (score desc,
/// id asc) and the same random order (`md5(seed:id)`, byte order). The bins are kept current
/// incrementally (LengthBins) and every ranking is read through an index, so an update costs about
/// the budget plus the new rows, not a sort of the pool, and the daemon's memory does not grow with
/// the pool. A property test checks that the two agree after arbitrary sequences of inserts,
/// deletes, scores, settings changes and restarts.
public enum SelectionWriter {
    public struct Change: Sendable, Equatable {
        public var selectionVersion: Int64
        public var size: Int
        public var entered: Int
        public var left: Int
        public var changed: Bool
    }

    /// Computes the selection for `modelVersion` under `policy` into the temp table `selection_next`,
    /// from the binned rows (LengthBins) through indexes, without sorting the pool.
    /// $1 model version, $2 each bin's quota of score rows (binned policies), $3 budget rows n,
    /// $4 rows of the random half.
    ///
    /// Binned policies take each bin's top `quota` rows by (score desc, id) from the
    /// (model_version, length_bin, score desc, id) index; the random half reads the
    /// (model_version, random_key, id) index in order (score_dsir's importance part the
    /// (model_version, importance_key desc, id) one), skipping rows the score half took (a hashed
    /// NOT IN keeps the index order; an anti-join would sort the pool), and stops after $4 rows, a
    /// constant, so the planner knows it stops early. The unbinned rankings are one top-n scan. The
    /// SQL varies only by the policy's fixed text, never by user values.
    static func computeNext(policy: Policy) -> String {
        let columns = "s.candidate_id, s.score, 'score'::text AS reason, s.length_bin"
        let binned = "s.model_version = $1::int AND s.length_bin IS NOT NULL"
        let scorePart = switch policy {
        case .scoreRandom, .scoreOnly, .scoreDSIR: """
            SELECT \(columns)
                FROM unnest($2::int[]) WITH ORDINALITY AS q(quota, bin)
                CROSS JOIN LATERAL (
                    SELECT * FROM tov.scores s
                    WHERE s.model_version = $1::int AND s.length_bin = q.bin::int - 1
                    ORDER BY s.score DESC, s.candidate_id LIMIT q.quota) s
            """
        case .scoreOnlyUnbinned:
            "SELECT \(columns) FROM tov.scores s WHERE \(binned) ORDER BY s.score DESC, s.candidate_id LIMIT $3::bigint"
        case .uncertainty:
            "SELECT \(columns) FROM tov.scores s WHERE \(binned) ORDER BY s.uncertainty DESC, s.candidate_id LIMIT $3::bigint"
        case .random:
            "SELECT \(columns) FROM tov.scores s WHERE false"
        }
        let randomHalf = policy == .scoreRandom || policy == .random || policy == .scoreDSIR
        // score_dsir's second part is importance resampling: the scores_by_importance_key order
        // (tov.importance_key, the Gumbel-top-k key) where the random half reads random_key's.
        let (reason, order) = policy == .scoreDSIR
            ? ("importance", "tov.importance_key(s.importance, s.random_key) DESC, s.candidate_id")
            : ("random", "s.random_key, s.candidate_id")
        // `params` only names every parameter with its type: a policy's SQL may leave some unused,
        // and Postgres refuses a parameter whose type it cannot infer.
        return """
            INSERT INTO selection_next (candidate_id, score, reason, length_bin)
            WITH params AS (SELECT $2::int[] AS quotas, $3::bigint AS n, $4::bigint AS random_rows
            ), score_part AS (
                \(scorePart)
            ), random_part AS (
                SELECT s.candidate_id, s.score, '\(reason)'::text AS reason, s.length_bin
                FROM tov.scores s
                WHERE \(randomHalf) AND \(binned)
                  AND s.candidate_id NOT IN (SELECT p.candidate_id FROM score_part p)
                ORDER BY \(order)
                LIMIT $4::bigint
            )
            SELECT * FROM score_part UNION ALL SELECT * FROM random_part
            """
    }

    /// Room for the score half in memory, so the random half's NOT IN is hashed (see `update`).
    static let workMemSet = "SET LOCAL work_mem = '64MB'"
    static let nextTruncate = "TRUNCATE selection_next"

    static let createNext = """
        CREATE TEMP TABLE IF NOT EXISTS selection_next (
            candidate_id bigint PRIMARY KEY, score double precision, reason text, length_bin integer
        ) ON COMMIT DELETE ROWS
        """

    /// Locks the state row of model version $2's target (one update at a time; a DELETE of the
    /// target waits for it) and reads: the target; whether the settings differ ($1); the bin counts
    /// if they hold for model version $2, bins $3 and seed $4; and whether φ of version $2 may have
    /// been written under another `score_fn` than $5 (the last update was for another version or
    /// function, or there was none). No row: the version, or its target, is gone.
    static let stateLock = """
        SELECT s.target_id, s.selection_version, s.model_version, s.settings IS DISTINCT FROM $1::jsonb AS settings_changed,
               CASE WHEN s.model_version = $2::int AND (s.settings ->> 'bins')::int = $3::int AND s.settings ->> 'seed' = $4::text
                    THEN s.bin_rows END AS bin_rows,
               s.model_version IS DISTINCT FROM $2::int OR s.settings ->> 'score_fn' IS DISTINCT FROM $5::text AS rescore_phi
        FROM tov.selection_state s
        WHERE s.target_id = (SELECT m.target_id FROM tov.model_versions m WHERE m.model_version = $2::int)
        FOR UPDATE OF s
        """

    /// $1 the target's next selection version, $2 the model version, $3 the target.
    static let removeLeaving = """
        WITH gone AS (
            DELETE FROM tov.selection_items i
            WHERE i.target_id = $3::int AND NOT EXISTS (SELECT 1 FROM selection_next n WHERE n.candidate_id = i.candidate_id)
            RETURNING i.candidate_id, i.reason
        )
        INSERT INTO tov.selection_history (target_id, selection_version, candidate_id, change, reason, model_version)
        SELECT $3::int, $1, candidate_id, 'out', reason, $2 FROM gone
        """

    /// $1 the target's next selection version, $2 the model version, $3 the target.
    static let insertEntering = """
        WITH added AS (
            INSERT INTO tov.selection_items (target_id, candidate_id, score, reason, length_bin)
            SELECT $3::int, n.candidate_id, n.score, n.reason, n.length_bin FROM selection_next n
            WHERE NOT EXISTS (SELECT 1 FROM tov.selection_items i WHERE i.target_id = $3::int AND i.candidate_id = n.candidate_id)
            RETURNING candidate_id, reason
        )
        INSERT INTO tov.selection_history (target_id, selection_version, candidate_id, change, reason, model_version)
        SELECT $3::int, $1, candidate_id, 'in', reason, $2 FROM added
        """

    /// $1 the target.
    static let updateStaying = """
        UPDATE tov.selection_items i SET score = n.score, reason = n.reason, length_bin = n.length_bin
        FROM selection_next n
        WHERE i.target_id = $1::int AND n.candidate_id = i.candidate_id
          AND (i.score, i.reason, i.length_bin) IS DISTINCT FROM (n.score, n.reason, n.length_bin)
        """

    /// $5 the target.
    static let stateUpdate = """
        UPDATE tov.selection_state
        SET selection_version = $1, model_version = $2, settings = $3::jsonb, bin_rows = $4::int[], computed_at = now()
        WHERE target_id = $5::int
        """

    /// One selection update as the leader runs it after new scores or a settings change, inside the
    /// caller's transaction `tx`, for the target of `modelVersion` under that target's `settings`
    /// (``TargetSettings/settings``'s `selection`): φ is re-derived if the target's `score_fn`
    /// changed since its last update (that rewrites every score row of the version, so not on every
    /// update: workers write φ under the `score_fn` they read with a share lock, see
    /// Queries.scoreFunctionLock and Queries.targetScoreFunctionLockMany); new scores are binned
    /// (LengthBins); the selection is read through indexes and the target's items change by a diff.
    /// Its selection version goes up only when its set changed. Other targets' selections are not
    /// touched.
    public static func update(in tx: Connection, modelVersion: Int, settings: SelectionSettings) async throws -> Change {
        let settingsJSON = settings.canonicalJSON
        let bins = max(settings.bins, 1)
        let function = settings.scoreFunction.rawValue
        let state = try await tx.query(stateLock, [settingsJSON, modelVersion, bins, String(settings.seed), function])
        guard let row = state.first else {
            throw DaemonError(.database, "model version \(modelVersion) has no target with a selection (tov.selection_state); the version or its target was deleted")
        }
        let target = Int(try row.get(Int32.self, "target_id"))
        let current = try row.get(Int64.self, "selection_version")
        let previousModel = try row.getOptional(Int32.self, "model_version").map(Int.init)
        let settingsChanged = try row.get(Bool.self, "settings_changed")
        let storedCounts = try row.getOptional([Int].self, "bin_rows")
        if try row.get(Bool.self, "rescore_phi") {
            try await tx.execute(Queries.scoreRecomputeForFunction, [modelVersion, function])
        }

        // The random half skips the score half through a hashed NOT IN (computeNext). Postgres hashes
        // it only if the score half fits in work_mem, and rescans it for every row otherwise; 64 MB
        // holds the ids of a score half of millions of rows. Local to this transaction.
        try await tx.execute(workMemSet)
        let counts = try await LengthBins.update(in: tx, modelVersion: modelVersion, bins: bins, seed: settings.seed, counts: storedCounts)
        let n = settings.budget.rowCount(eligible: counts.reduce(0, +))
        let scoreRows = settings.scoreRows(budget: n)
        let quotas = (0..<bins).map { binQuota(bin: $0, scoreRows: scoreRows, bins: bins) }
        // The score half is short where a bin holds fewer rows than its quota; the random half fills
        // the rest of the budget. Unbinned rankings fill the whole budget and have no random half.
        let scoreTaken: Int = switch settings.policy {
        case .scoreRandom, .scoreOnly, .scoreDSIR: zip(quotas, counts).map { min($0, $1) }.reduce(0, +)
        case .scoreOnlyUnbinned, .uncertainty: n
        case .random: 0
        }

        try await tx.execute(createNext)
        try await tx.execute(nextTruncate)
        let size = try await tx.execute(computeNext(policy: settings.policy), [modelVersion, quotas, Int64(n), Int64(n - scoreTaken)])
        let next = current + 1
        let left = try await tx.execute(removeLeaving, [next, modelVersion, target])
        let entered = try await tx.execute(insertEntering, [next, modelVersion, target])
        let updated = try await tx.execute(updateStaying, [target])
        let changed = left + entered + updated > 0 || previousModel != modelVersion || settingsChanged
        let version = changed ? next : current
        try await tx.execute(stateUpdate, [version, modelVersion, settingsJSON, counts, target])
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
        // score_share only when it is not the default: selections stored before the setting existed
        // were computed at ½, and must not read as computed under other settings.
        let share = scoreShare == SelectionSettings.defaultScoreShare ? "" : ",\"score_share\":\(scoreShare)"
        return "{\"bins\":\(bins),\"budget\":\(budgetJSON),\"policy\":\"\(policy.rawValue)\",\"score_fn\":\"\(scoreFunction.rawValue)\",\"seed\":\(seed)\(share)}"
    }
}
