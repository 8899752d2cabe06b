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

    /// `--selected`: every row of tov.selected as it is.
    public static let selectedCopyOut =
        "COPY (SELECT json_build_object('set', 'selected', \(fields)) FROM tov.selected ORDER BY id) TO STDOUT"

    /// `--with-validation`: one statement for both sets, so the selection and Z_val come from one
    /// snapshot. Every selected row is written (the pool may hold the same text twice, and both rows
    /// were selected); a Z_val row is left out when its (prompt, response) is a selected row's or an
    /// earlier Z_val row's (DISTINCT ON keeps the lowest id). Z_val rows keep their own `source`
    /// (tov.validation.source, migration 003).
    public static let selectedWithValidationCopyOut = """
        COPY (
            WITH zval AS (
                SELECT DISTINCT ON (v.prompt, v.response) v.id, v.prompt, v.response, v.source, v.meta
                FROM tov.validation v
                WHERE NOT EXISTS (SELECT 1 FROM tov.selected s WHERE s.prompt = v.prompt AND s.response = v.response)
                ORDER BY v.prompt, v.response, v.id
            ), parts (part, id, prompt, response, source, meta, score, reason, length_bin, selection_version) AS (
                SELECT 0, id, prompt, response, source, meta, score, reason, length_bin, selection_version FROM tov.selected
                UNION ALL
                SELECT 1, id, prompt, response, source, meta, NULL, NULL, NULL, NULL FROM zval
            )
            SELECT json_build_object('set', CASE part WHEN 0 THEN 'selected' ELSE 'validation' END, \(fields))
            FROM parts ORDER BY part, id
        ) TO STDOUT
        """
}
