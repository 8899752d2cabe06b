/// Every SQL statement the daemon runs, named noun+verb(+Many) after what it does.
///
/// Values are always bound as `$n` parameters; nothing here is built from user data.
enum Queries {
    // MARK: - Jobs

    /// Claims up to $1 never-tried jobs plus at most one job being retried, for $2 seconds for worker
    /// $3, skipping the model versions in $4 (their checkpoints do not load: the rows wait for them
    /// unclaimed, so no attempt is charged); returns the fencing attempt number, the row's raw bytes
    /// and their sizes. Leases are compared with the database clock, never the host's. Jobs are taken
    /// first in, first out, new rows and rescoring alike: with new rows first, a steady stream of
    /// inserts kept a refresh's rescoring waiting without bound.
    ///
    /// One retry per claim is what makes `max_attempts` fair: a crash charges a claim to every row of
    /// the batch, so the rows of a crashed batch come back one per claim, each scored alone after the
    /// claim's fresh rows; only the tries alone count against the row (`tried_alone`, marked by
    /// ``jobTryAloneMark`` just before), so only a row that keeps crashing on its own reaches the
    /// limit. The retry taken is the one with the fewest tries alone, then claims: a process killed
    /// from outside (a deploy, the OOM killer) just after it starts would otherwise charge the same
    /// oldest row again and again and reject a good row (seen in the fault suite's 20 SIGKILLs on a
    /// loaded box); a row that really crashes the scorer still reaches the limit, once the others
    /// have had their turn.
    ///
    /// Sizes are checked here, against $5 (`max_text_bytes`, per field as RowValidator does):
    /// `octet_length` reads the stored length without detoasting, and a row over the limit comes back
    /// with NULL texts and its sizes, so a batch of 64 rows near the 1 GiB limit costs nothing to claim.
    /// The limit guards the pool's entry only: a rescoring job's row was validated when it entered and
    /// is fetched whatever the limit is now, so lowering `max_text_bytes` never rejects (and so never
    /// deletes the scores of) a row already in the pool.
    static let jobClaimMany = """
        WITH fresh AS (
            SELECT candidate_id, model_version FROM tov.jobs
            WHERE attempts = 0 AND (lease_until IS NULL OR lease_until < now()) AND model_version <> ALL ($4::int[])
            ORDER BY enqueued_at, model_version, candidate_id
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ), retry AS (
            SELECT candidate_id, model_version FROM tov.jobs
            WHERE attempts > 0 AND (lease_until IS NULL OR lease_until < now()) AND model_version <> ALL ($4::int[])
            ORDER BY tried_alone, attempts, enqueued_at, model_version, candidate_id
            LIMIT 1
            FOR UPDATE SKIP LOCKED
        ), picked AS (
            SELECT * FROM fresh UNION ALL SELECT * FROM retry
        ), claimed AS (
            UPDATE tov.jobs j
            SET attempts = j.attempts + 1, lease_until = now() + make_interval(secs => $2::float8), worker = $3
            FROM picked p
            WHERE j.candidate_id = p.candidate_id AND j.model_version = p.model_version
            RETURNING j.candidate_id, j.model_version, j.attempts, j.tried_alone
        )
        SELECT c.candidate_id, c.model_version, c.attempts, c.tried_alone,
               CASE WHEN n.fits THEN convert_to(x.prompt, getdatabaseencoding()) END AS prompt,
               CASE WHEN n.fits THEN convert_to(x.response, getdatabaseencoding()) END AS response,
               extract(epoch FROM now() - x.created_at)::float8 AS age_seconds,
               n.prompt_bytes, n.response_bytes
        FROM claimed c JOIN tov.candidates x ON x.id = c.candidate_id
        CROSS JOIN LATERAL (
            SELECT octet_length(x.prompt) AS prompt_bytes, octet_length(x.response) AS response_bytes,
                   c.model_version > 0 OR (octet_length(x.prompt) <= $5::bigint AND octet_length(x.response) <= $5::bigint) AS fits
        ) n
        ORDER BY c.candidate_id
        """

    /// Ends the claims still held: deletes the jobs whose attempt number still matches ($1 ids,
    /// $2 versions, $3 attempts). A worker whose lease expired and was re-claimed gets nothing back
    /// and so writes nothing (fencing).
    static let jobCompleteMany = """
        DELETE FROM tov.jobs j
        USING unnest($1::bigint[], $2::int[], $3::int[]) AS f(candidate_id, model_version, attempts)
        WHERE j.candidate_id = f.candidate_id AND j.model_version = f.model_version AND j.attempts = f.attempts
        RETURNING j.candidate_id, j.model_version
        """

    /// Counts a try alone on the retried job ($1 id, $2 version, $3 attempts) just before it is scored
    /// alone; returns nothing when the claim is no longer ours (fencing). The job is deleted when the try
    /// completes, so while it exists `tried_alone` counts the tries alone that did not finish.
    static let jobTryAloneMark = """
        UPDATE tov.jobs SET tried_alone = tried_alone + 1
        WHERE candidate_id = $1 AND model_version = $2 AND attempts = $3
        RETURNING tried_alone
        """

    /// Gives claimed jobs back untouched (graceful shutdown): neither the claim nor a try alone that
    /// had begun is counted ($4: each job's `tried_alone` as claimed).
    static let jobReleaseMany = """
        UPDATE tov.jobs j SET lease_until = NULL, attempts = greatest(j.attempts - 1, 0), tried_alone = f.tried_alone, worker = NULL
        FROM unnest($1::bigint[], $2::int[], $3::int[], $4::int[]) AS f(candidate_id, model_version, attempts, tried_alone)
        WHERE j.candidate_id = f.candidate_id AND j.model_version = f.model_version AND j.attempts = f.attempts
        """

    /// Records why a batch failed on its jobs still held ($1 ids, $2 versions, $3 attempts, $4 the
    /// error) and ends their leases, so another claim retries them at once; the attempt stays counted.
    static let jobFailMany = """
        UPDATE tov.jobs j SET last_error = $4, lease_until = now()
        FROM unnest($1::bigint[], $2::int[], $3::int[]) AS f(candidate_id, model_version, attempts)
        WHERE j.candidate_id = f.candidate_id AND j.model_version = f.model_version AND j.attempts = f.attempts
        """

    /// Enqueues (re)scoring of every ready, unrejected row outside U that has no score for model
    /// version $1 yet and was not found unscorable under it (non-finite losses: scoring it again
    /// gives the same losses, so re-enqueueing it would loop). Used when a version starts scoring and
    /// by the leader's sweeper.
    static let jobEnqueueMissingScores = """
        INSERT INTO tov.jobs (candidate_id, model_version)
        SELECT r.candidate_id, $1::int FROM tov.ready r
        WHERE NOT EXISTS (SELECT 1 FROM tov.scores s WHERE s.candidate_id = r.candidate_id AND s.model_version = $1::int)
          AND NOT EXISTS (SELECT 1 FROM tov.rejects x WHERE x.candidate_id = r.candidate_id)
          AND NOT EXISTS (SELECT 1 FROM tov.unscorable u WHERE u.candidate_id = r.candidate_id AND u.model_version = $1::int)
          AND NOT EXISTS (SELECT 1 FROM tov.base_subset b WHERE b.candidate_id = r.candidate_id AND b.base_version = $2::int)
          AND NOT EXISTS (SELECT 1 FROM tov.jobs j WHERE j.candidate_id = r.candidate_id AND j.model_version IN (0, $1::int))
        ON CONFLICT DO NOTHING
        """

    // MARK: - Ingest results

    static let rejectInsert = """
        INSERT INTO tov.rejects (candidate_id, reason, detail, attempts) VALUES ($1, $2::tov.reject_reason, $3, $4)
        ON CONFLICT (candidate_id) DO NOTHING
        """

    static let readyInsertMany = """
        INSERT INTO tov.ready (candidate_id, prompt_bytes, response_bytes)
        SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[])
        ON CONFLICT (candidate_id) DO NOTHING
        """

    /// Whether a row belongs to U of base model $2 (U rows are never scored).
    static let baseSubsetContainsMany = """
        SELECT candidate_id FROM tov.base_subset WHERE base_version = $1 AND candidate_id = ANY($2::bigint[])
        """

    // MARK: - Scores

    static let baseLossesGetMany = """
        SELECT candidate_id, losses, uncertainty, tokens FROM tov.base_losses
        WHERE base_version = $1 AND candidate_id = ANY($2::bigint[])
        """

    /// One batch of base losses: $1 ids, $2 base version, $3 the rows' L losses each, flattened in
    /// row order (a row's losses are $3[(i−1)·L+1 : i·L], L = $6), $4 uncertainties, $5 tokens.
    static let baseLossesInsertMany = """
        INSERT INTO tov.base_losses (candidate_id, base_version, losses, uncertainty, tokens)
        SELECT t.id, $2::int, ($3::real[])[(t.i - 1) * $6::int + 1 : t.i * $6::int], t.uncertainty, t.tokens
        FROM unnest($1::bigint[], $4::real[], $5::int[]) WITH ORDINALITY AS t(id, uncertainty, tokens, i)
        ON CONFLICT DO NOTHING
        """

    /// One batch of scores: $1 ids, $2 model versions, $3/$4 the base/val losses flattened in row
    /// order (L = $9 per row), $5 score_fn, $6/$7 mean base/val losses, $8 uncertainties, $9 L,
    /// $10 tokens, $11 n-gram importance weights. φ is computed by `tov.phi`, the same function the
    /// settings recompute uses.
    static let scoreInsertMany = """
        INSERT INTO tov.scores (candidate_id, model_version, score, base_loss, val_loss, base_losses, val_losses, uncertainty, tokens, importance)
        SELECT t.id, t.version, tov.phi(l.base, l.val, $5), t.base_mean, t.val_mean, l.base, l.val, t.uncertainty, t.tokens, t.importance
        FROM unnest($1::bigint[], $2::int[], $6::real[], $7::real[], $8::real[], $10::int[], $11::float8[])
             WITH ORDINALITY AS t(id, version, base_mean, val_mean, uncertainty, tokens, importance, i)
        CROSS JOIN LATERAL (SELECT ($3::real[])[(t.i - 1) * $9::int + 1 : t.i * $9::int] AS base,
                                   ($4::real[])[(t.i - 1) * $9::int + 1 : t.i * $9::int] AS val) l
        ON CONFLICT (candidate_id, model_version) DO NOTHING
        """

    /// The global `score_fn`, read with a share lock inside the transaction that writes scores: a
    /// settings change waits for transactions already writing, and transactions after it read the
    /// new value. So every score row committed after a `score_fn` change uses the new function, and
    /// the leader re-derives φ only once per change instead of on every tick. A worker runs
    /// ``targetScoreFunctionLockMany`` after it: a target's own value wins over this one.
    static let scoreFunctionLock = "SELECT value #>> '{}' AS score_fn FROM tov.settings WHERE key = 'score_fn' FOR SHARE"

    /// For each model version $1: its target's own `score_fn`, or the global one when the target sets
    /// none (what `tov.target_setting(target_id, 'score_fn')` says), with a share lock on the targets
    /// rows, so a change of a target's `score_fn` waits for the transactions writing its scores, as a
    /// global change does (``scoreFunctionLock``, which must run first in the same transaction: then
    /// the global row cannot change under this statement). The target's value is read from the
    /// locked row itself, not through `tov.target_setting`: that function reads the statement's
    /// snapshot, which can predate a change the lock waited for; a locked row is its latest version.
    /// NULL where neither is stored (the documented default applies).
    ///
    /// The cost of the guarantee: a transaction that changed the target's settings holds its row until
    /// it commits, and batches writing that target's scores wait for it, as they wait for a global
    /// settings change. A Z_val write does not touch the row (its version lives in tov.target_zval).
    static let targetScoreFunctionLockMany = """
        SELECT m.model_version,
               coalesce(t.settings ->> 'score_fn', (SELECT value #>> '{}' FROM tov.settings WHERE key = 'score_fn')) AS score_fn
        FROM tov.model_versions m JOIN tov.targets t USING (target_id)
        WHERE m.model_version = ANY ($1::int[])
        FOR SHARE OF t
        """

    /// Wakes the leader (through the listeners) to fold new scores into the selection; delivered at commit.
    static let scoresNotify = "SELECT pg_notify('tov_scores', '')"

    /// φ of model version $1 re-derived under `score_fn` $2 from the stored per-epoch losses (the
    /// leader, once per change of the `score_fn` the version's target sees; see SelectionWriter.update).
    static let scoreRecomputeForFunction = """
        UPDATE tov.scores SET score = tov.phi(base_losses, val_losses, $2)
        WHERE model_version = $1 AND score IS DISTINCT FROM tov.phi(base_losses, val_losses, $2)
        """

    // MARK: - Settings and versions

    /// Every setting with the database's verdict on it: the daemon uses no value its rule refuses.
    static let settingsGetAll = "SELECT key, value::text AS value, tov.setting_is_valid(key, value) AS valid FROM tov.settings"

    /// Live model versions of every target: each one's complete version and the one it rescores,
    /// with their base model and target.
    static let modelVersionLiveMany = """
        SELECT m.model_version, m.base_version, m.zval_version, m.method, m.status::text, b.epochs, m.target_id
        FROM tov.model_versions m JOIN tov.base_models b USING (base_version)
        WHERE m.status IN ('complete', 'scoring')
        ORDER BY m.model_version
        """

    static let checkpointInsert = """
        INSERT INTO tov.checkpoints (base_version, model_version, kind, epoch, data, sha256)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (base_version, coalesce(model_version, 0), kind, epoch) DO UPDATE SET data = EXCLUDED.data, sha256 = EXCLUDED.sha256
        """

    // MARK: - Benchmarks

    /// The first $2 rows scored under model version $1, with their text as bytes (`tovd bench
    /// capacity`'s engine measurement scores exactly the daemon's rows).
    static let scoredRowTextMany = """
        SELECT c.id, convert_to(c.prompt, getdatabaseencoding()) AS prompt, convert_to(c.response, getdatabaseencoding()) AS response,
               s.tokens
        FROM tov.scores s JOIN tov.candidates c ON c.id = s.candidate_id
        WHERE s.model_version = $1 ORDER BY c.id LIMIT $2
        """
}
