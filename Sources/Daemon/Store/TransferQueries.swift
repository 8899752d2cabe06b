/// The COPY statements of `tovd import` and `tovd export`: rows in as JSONL-derived text, the
/// selection (and Z_val) out as one JSON object per line.
public enum TransferQueries {
    /// Rows into tov.candidates (the pool) or tov.validation (Z_val), as COPY text.
    public static let candidatesCopyIn = "COPY tov.candidates (prompt, response, source, meta) FROM STDIN"
    public static let validationCopyIn = "COPY tov.validation (prompt, response, source, meta) FROM STDIN"
    /// A target's Z_val (`tovd import --into validation --target T`): each line starts with the name.
    public static let validationOfTargetCopyIn = "COPY tov.validation (target, prompt, response, source, meta) FROM STDIN"

    static let fields = """
        'id', id, 'prompt', prompt, 'response', response, 'source', source, 'meta', meta, 'score', score,
        'reason', reason, 'length_bin', length_bin, 'selection_version', selection_version
        """

    /// COPY takes no parameters: the target (and, for `--as-of`, the target id and selection version)
    /// reach the COPY statements as settings local to the export's transaction.
    public static let exportTargetSet = "SELECT set_config('tovd.export_target', $1, true) AS target"
    public static let exportAsOfSet = """
        SELECT set_config('tovd.export_target_id', $1::text, true) AS target_id, set_config('tovd.export_as_of', $2::text, true) AS as_of
        """

    /// `--selected`: every row of the target's selection (tov.selections; for `default`, tov.selected) as it is.
    public static let selectedCopyOut = """
        COPY (SELECT json_build_object('set', 'selected', \(fields)) FROM tov.selections
              WHERE target = current_setting('tovd.export_target') ORDER BY id) TO STDOUT
        """

    /// `--with-validation`: one statement for both sets, so the selection and Z_val come from one
    /// snapshot. Every selected row is written (the pool may hold the same text twice, and both rows
    /// were selected); a Z_val row is left out when its (prompt, response) is a selected row's or an
    /// earlier Z_val row's (DISTINCT ON keeps the lowest id). Z_val rows keep their own `source`
    /// (tov.validation.source, migration 003). Both are the target's: its selection and its Z_val.
    public static let selectedWithValidationCopyOut = """
        COPY (
            WITH selected AS (
                SELECT * FROM tov.selections WHERE target = current_setting('tovd.export_target')
            ), zval AS (
                SELECT DISTINCT ON (v.prompt, v.response) v.id, v.prompt, v.response, v.source, v.meta
                FROM tov.validation v
                WHERE v.target = current_setting('tovd.export_target')
                  AND NOT EXISTS (SELECT 1 FROM selected s WHERE s.prompt = v.prompt AND s.response = v.response)
                ORDER BY v.prompt, v.response, v.id
            ), parts (part, id, prompt, response, source, meta, score, reason, length_bin, selection_version) AS (
                SELECT 0, id, prompt, response, source, meta, score, reason, length_bin, selection_version FROM selected
                UNION ALL
                SELECT 1, id, prompt, response, source, meta, NULL, NULL, NULL, NULL FROM zval
            )
            SELECT json_build_object('set', CASE part WHEN 0 THEN 'selected' ELSE 'validation' END, \(fields))
            FROM parts ORDER BY part, id
        ) TO STDOUT
        """

    // MARK: - Manifest (`tovd export --manifest`, `--as-of`)

    /// What shaped the target's selection, as the database recorded it, in the export's snapshot:
    /// the selection version and the model version it came from (tov.selection_state), that
    /// version's base model and θ0, and the settings: the base model's (`base`: its stored config,
    /// u_size and epochs, global to every target), the version's (`model`: method, val_lr_ratio and the
    /// Z_val version it was trained on) and the selection's (`selection`: what the keeper applied).
    public static let manifestGet = """
        SELECT t.target_id, s.selection_version, s.model_version, m.base_version,
               CASE WHEN b.base_version IS NOT NULL THEN coalesce(b.theta0, 'bootstrap') END AS theta0,
               jsonb_build_object(
                   'base', CASE WHEN b.base_version IS NOT NULL THEN b.config || jsonb_build_object('u_size', b.u_size, 'epochs', b.epochs) END,
                   'model', CASE WHEN m.model_version IS NOT NULL
                                 THEN jsonb_build_object('method', m.method, 'val_lr_ratio', m.val_lr_ratio, 'zval_version', m.zval_version) END,
                   'selection', s.settings)::text AS settings,
               tov.schema_version() AS schema_version, z.version AS zval_version,
               (SELECT count(*) FROM tov.validation v WHERE v.target = t.name) AS zval_rows,
               to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS exported_at
        FROM tov.targets t JOIN tov.selection_state s USING (target_id) JOIN tov.target_zval z USING (target_id)
        LEFT JOIN tov.model_versions m ON m.model_version = s.model_version
        LEFT JOIN tov.base_models b ON b.base_version = m.base_version
        WHERE t.name = current_setting('tovd.export_target')
        """

    /// The target's selected ids with their reason, in id order (the manifest's rows).
    public static let selectionIdsGet = """
        SELECT id, reason FROM tov.selections WHERE target = current_setting('tovd.export_target') ORDER BY id
        """

    /// The rows in the target's selection at `tovd.export_as_of`, from tov.selection_history: each
    /// row whose last change at or before that version is 'in'. History has no foreign key to the
    /// target, so this holds for a dropped target too.
    static let asOfSelected = """
        WITH last AS (
            SELECT DISTINCT ON (candidate_id) candidate_id, change
            FROM tov.selection_history
            WHERE target_id = current_setting('tovd.export_target_id')::int
              AND selection_version <= current_setting('tovd.export_as_of')::bigint
            ORDER BY candidate_id, selection_version DESC
        ), as_of AS (
            SELECT candidate_id AS id FROM last WHERE change = 'in'
        )
        """

    /// The ids `--as-of` reproduces, with whether each is still in tov.candidates.
    public static let asOfIdsGet = asOfSelected + """
        SELECT a.id, EXISTS (SELECT 1 FROM tov.candidates c WHERE c.id = a.id) AS present FROM as_of a ORDER BY a.id
        """

    /// `--as-of`: those rows as they are in tov.candidates. The history keeps membership, not
    /// score, reason or length bin: those are null, and selection_version is the manifest's.
    public static let asOfCopyOut = """
        COPY (
            \(asOfSelected)
            SELECT json_build_object('set', 'selected', \(fields))
            FROM (SELECT c.id, c.prompt, c.response, c.source, c.meta, NULL::float8 AS score, NULL::text AS reason,
                         NULL::int AS length_bin, current_setting('tovd.export_as_of')::bigint AS selection_version
                  FROM as_of a JOIN tov.candidates c USING (id)) r
            ORDER BY id
        ) TO STDOUT
        """
}
