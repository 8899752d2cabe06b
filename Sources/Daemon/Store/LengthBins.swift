import PQ
import Selection

/// Keeps `tov.scores.length_bin` equal to `ntile(bins) OVER (ORDER BY tokens, candidate_id) - 1`
/// over the binned rows of one model version, without sorting the pool on every update.
///
/// Bins are contiguous ranges of the (tokens, id) order, and ntile fixes their sizes from the row
/// count alone: with n rows the first n mod k bins hold ⌊n/k⌋+1 rows, the rest ⌊n/k⌋. So an update
/// with m new rows (1) puts each new row in the bin whose key range holds it, which keeps the bins
/// ordered, then (2) walks the boundaries left to right and moves the rows at each end that the new
/// sizes push across, through the (model_version, length_bin, tokens, id) index. Each boundary
/// moves by at most m rows, so an update touches O(bins · m) rows whatever the pool size.
///
/// Deleted binned rows (a candidate deleted, say) are reported by a trigger in `tov.scores_removed`
/// per version and bin; the update subtracts its version's reports from the counts and the same walk
/// closes the gaps. With several targets each one's complete version has its own bins and reports:
/// an update takes only its own version's reports (and stale ones, of versions no target selects
/// from), never another target's, whose counts would otherwise go wrong. A TRUNCATE's report (NULL
/// version) concerns every target: the update that takes it rebins its own version and clears the
/// other targets' stored counts, so each rebins at its next update.
///
/// The random half's key, md5(seed:id), is written with the bin, so the random order is an index
/// too. A from-scratch pass (`rebin`) runs when there are no valid counts: the first update of a
/// model version, a change of `bins` or `seed`, or a TRUNCATE of tov.scores.
enum LengthBins {
    /// Brings the bins of `modelVersion` up to date and returns the row count of each bin.
    /// `counts` are the stored counts if they are valid for this version, bins and seed, else nil.
    /// Runs inside the leader's transaction, which holds the selection_state row lock.
    static func update(in tx: Connection, modelVersion: Int, bins: Int, seed: Int64, counts: [Int]?) async throws -> [Int] {
        guard var counts, counts.count == bins else {
            return try await rebin(in: tx, modelVersion: modelVersion, bins: bins, seed: seed)
        }
        // Deletions committed so far, of this version (and stale reports, dropped: rows of a version
        // are binned only while it is a target's selected one). Other targets' reports stay theirs.
        for row in try await tx.query(consumeRemoved, [modelVersion]) {
            guard try !row.isNull("model_version") else { return try await rebin(in: tx, modelVersion: modelVersion, bins: bins, seed: seed) }
            guard Int(try row.get(Int32.self, "model_version")) == modelVersion else { continue }
            let bin = Int(try row.getOptional(Int32.self, "length_bin") ?? -1)
            guard counts.indices.contains(bin) else { return try await rebin(in: tx, modelVersion: modelVersion, bins: bins, seed: seed) }
            counts[bin] -= Int(try row.get(Int64.self, "rows"))
        }
        let new = try await tx.query(unbinnedRows, [modelVersion]).map { Key(tokens: try $0.get(Int32.self, "tokens"), id: try $0.get(Int64.self, "candidate_id")) }
        // Many new rows against a small pool: one sort is cheaper than walking boundaries.
        if new.count > counts.reduce(0, +) {
            return try await rebin(in: tx, modelVersion: modelVersion, bins: bins, seed: seed)
        }

        // 1. Each new row joins the last non-empty bin whose first key is ≤ its key (bin 0 if none).
        if !new.isEmpty {
            var firsts: [(bin: Int, key: Key)] = []
            for row in try await tx.query(firstKeyOfEachBin, [modelVersion, bins]) {
                firsts.append((Int(try row.get(Int32.self, "bin")), Key(tokens: try row.get(Int32.self, "tokens"), id: try row.get(Int64.self, "candidate_id"))))
            }
            // The same rule as binNewRows applies in SQL (width_bucket over the same first keys),
            // so the counts follow without sending a bin per row.
            for key in new {
                counts[firsts.last(where: { $0.key <= key })?.bin ?? 0] += 1
            }
            try await tx.execute(binNewRows, [modelVersion, new.map(\.id), String(seed),
                                              firsts.map(\.key.tokens), firsts.map(\.key.id), firsts.map { Int32($0.bin) }])
        }

        // 2. Rebalance to the ntile sizes (new rows and deletions both shift them). Bins before b
        //    already have their final size, so bin b's surplus (or shortfall) crosses boundary b.
        let sizes = ntileSizes(rows: counts.reduce(0, +), bins: bins)
        for b in 0..<(bins - 1) {
            let surplus = counts[b] - sizes[b]
            if surplus > 0 {
                try await tx.execute(moveLastRowsUp, [modelVersion, b, surplus])
                counts[b] -= surplus
                counts[b + 1] += surplus
            } else if surplus < 0 {
                // The first rows after bin b, taken from the next bins in order (a next bin may be
                // smaller than the shortfall when there are fewer rows than bins).
                var needed = -surplus
                try await tx.execute(moveFirstRowsDown, [modelVersion, b, needed])
                counts[b] += needed
                for j in (b + 1)..<bins where needed > 0 {
                    let taken = min(needed, counts[j])
                    counts[j] -= taken
                    needed -= taken
                }
            }
        }
        return counts
    }

    /// Bins every score row of `modelVersion` from scratch, and drops the deletion reports in the
    /// same statement, so they and the rows binned agree: a deletion committed after the
    /// statement's snapshot keeps its report (and the row was counted), one committed before it
    /// loses both. Rows committed later stay unbinned and are folded in by the next update.
    static func rebin(in tx: Connection, modelVersion: Int, bins: Int, seed: Int64) async throws -> [Int] {
        let rows = try await tx.query(rebinAll, [modelVersion, bins, String(seed)]).first?.get(Int64.self, "rows") ?? 0
        return ntileSizes(rows: Int(rows), bins: bins)
    }

    /// Bin sizes of `ntile(bins)` over `rows` rows: the first rows mod bins bins get one extra.
    static func ntileSizes(rows: Int, bins: Int) -> [Int] {
        (0..<bins).map { rows / bins + ($0 < rows % bins ? 1 : 0) }
    }

    /// A row's position in the bin order: (tokens, id).
    struct Key: Comparable {
        var tokens: Int32
        var id: Int64
        static func < (a: Key, b: Key) -> Bool { (a.tokens, a.id) < (b.tokens, b.id) }
    }

    // MARK: - SQL

    /// The random key, written together with the bin. $seed is the seed's decimal text.
    private static func randomKey(seed: String, id: String) -> String {
        "decode(md5(\(seed) || ':' || \(id)::text), 'hex')"
    }

    /// The deletion reports an update of version $1 takes: its own, stale ones (of versions that are
    /// no target's complete version any more), and a TRUNCATE's (NULL version). A TRUNCATE's report
    /// also clears every other target's stored bin counts (`bin_rows`, so they rebin from scratch at
    /// their next update) in the same statement that takes it: once taken, nothing else says so.
    static func removedReportsTaken(version: String) -> String {
        """
        consumed AS (
            DELETE FROM tov.scores_removed r
            WHERE r.model_version IS NULL OR r.model_version = \(version)
               OR r.model_version <> ALL (ARRAY(SELECT model_version FROM tov.model_versions WHERE status = 'complete'))
            RETURNING r.model_version, r.length_bin, r.rows
        ), others_invalidated AS (
            UPDATE tov.selection_state SET bin_rows = NULL
            WHERE model_version IS DISTINCT FROM \(version) AND bin_rows IS NOT NULL
              AND EXISTS (SELECT 1 FROM consumed WHERE model_version IS NULL)
        )
        """
    }

    /// $1 model version, $2 bins, $3 seed. Returns the number of rows ranked by ntile, and binned.
    ///
    /// No join: one sorted pass ranks the rows and keeps only the first (tokens, id) of each bin
    /// (at most $2 keys), then the UPDATE scans the version's rows once and finds each row's bin by
    /// binary search over those keys (`width_bucket` on row values compares like the (tokens, id)
    /// order). The statement used to join the ranking back to tov.scores on candidate_id; with the
    /// statistics of tov.scores taken before the version's scores arrived (autovacuum after the
    /// previous switch) the planner expected one row on each side and chose a nested loop that
    /// rescanned the whole ranking for every row: n² comparisons, 134 s at 20,000 rows. Without a
    /// join there is no plan whose cost is not n log n. One statement, so the ranking, the bins
    /// written and the deletion reports dropped all see one snapshot.
    static let rebinAll = """
        WITH \(removedReportsTaken(version: "$1::int")), ranked AS (
            SELECT tokens, candidate_id, ntile($2::int) OVER (ORDER BY tokens, candidate_id) - 1 AS bin, count(*) OVER () AS total
            FROM tov.scores WHERE model_version = $1::int
        ), firsts AS MATERIALIZED (
            SELECT array_agg(ROW(tokens, candidate_id) ORDER BY bin) AS keys, max(total) AS total
            FROM (SELECT tokens, candidate_id, bin, total, lag(bin) OVER (ORDER BY tokens, candidate_id) AS previous FROM ranked) r
            WHERE previous IS DISTINCT FROM bin
        ), binned AS (
            UPDATE tov.scores s
            SET length_bin = width_bucket(ROW(s.tokens, s.candidate_id), (SELECT keys FROM firsts)) - 1,
                random_key = \(randomKey(seed: "$3::text", id: "s.candidate_id"))
            WHERE s.model_version = $1::int
            RETURNING 1
        )
        SELECT coalesce((SELECT total FROM firsts), 0) AS rows, (SELECT count(*) FROM binned) AS binned
        """

    /// Takes the deletion reports an update of version $1 takes (``removedReportsTaken(version:)``):
    /// model version, bin and rows per report (NULL version: TRUNCATE).
    static let consumeRemoved = "WITH \(removedReportsTaken(version: "$1::int")) SELECT model_version, length_bin, rows FROM consumed"

    /// New scores of version $1, in bin order.
    static let unbinnedRows = """
        SELECT candidate_id, tokens FROM tov.scores
        WHERE model_version = $1::int AND length_bin IS NULL ORDER BY tokens, candidate_id
        """

    /// The first (tokens, id) of each non-empty bin of version $1 with $2 bins.
    static let firstKeyOfEachBin = """
        SELECT b.bin, f.tokens, f.candidate_id
        FROM generate_series(0, $2::int - 1) AS b(bin)
        CROSS JOIN LATERAL (
            SELECT s.tokens, s.candidate_id FROM tov.scores s
            WHERE s.model_version = $1::int AND s.length_bin = b.bin
            ORDER BY s.tokens, s.candidate_id LIMIT 1) f
        ORDER BY b.bin
        """

    /// Bins the new rows $2 of version $1 and writes their random key under seed $3: each joins the
    /// last non-empty bin whose first key is ≤ its own (bin 0 if none). $4/$5 are the first
    /// (tokens, id) of each non-empty bin in order, $6 those bins. No join with the pool: the rows
    /// are found by primary key (or the unbinned index) and binned by binary search over ≤ bins keys.
    static let binNewRows = """
        UPDATE tov.scores s
        SET length_bin = coalesce(($6::int[])[width_bucket(ROW(s.tokens, s.candidate_id),
                (SELECT array_agg(ROW(f.tokens, f.id) ORDER BY f.i) FROM unnest($4::int[], $5::bigint[]) WITH ORDINALITY AS f(tokens, id, i)))], 0),
            random_key = \(randomKey(seed: "$3::text", id: "s.candidate_id"))
        WHERE s.model_version = $1::int AND s.candidate_id = ANY($2::bigint[])
        """

    /// Moves the last $3 rows of bin $2 (version $1) into bin $2 + 1: those at or after the $3-th
    /// key from the end. The key is found once (an InitPlan reading ≤ $3 index entries) and the rows
    /// by a range of the (model_version, length_bin, tokens, id) index, so no plan joins the pool to
    /// itself (an `IN (subquery)` here could run as a nested loop over the version's rows).
    static let moveLastRowsUp = """
        UPDATE tov.scores s SET length_bin = $2::int + 1
        WHERE s.model_version = $1::int AND s.length_bin = $2::int
          AND (s.tokens, s.candidate_id) >= (
            SELECT l.tokens, l.candidate_id FROM (
                SELECT tokens, candidate_id FROM tov.scores
                WHERE model_version = $1::int AND length_bin = $2::int
                ORDER BY tokens DESC, candidate_id DESC LIMIT $3::int) l
            ORDER BY l.tokens, l.candidate_id LIMIT 1)
        """

    /// Moves the first $3 rows after bin $2 (version $1) into bin $2: those up to the $3-th key
    /// after it. The bins are ordered ranges, so (length_bin, tokens, id) order over bins > $2 is
    /// the (tokens, id) order. Found as in moveLastRowsUp, without a join.
    static let moveFirstRowsDown = """
        UPDATE tov.scores s SET length_bin = $2::int
        WHERE s.model_version = $1::int AND s.length_bin > $2::int
          AND (s.length_bin, s.tokens, s.candidate_id) <= (
            SELECT f.length_bin, f.tokens, f.candidate_id FROM (
                SELECT length_bin, tokens, candidate_id FROM tov.scores
                WHERE model_version = $1::int AND length_bin > $2::int
                ORDER BY length_bin, tokens, candidate_id LIMIT $3::int) f
            ORDER BY f.length_bin DESC, f.tokens DESC, f.candidate_id DESC LIMIT 1)
        """
}
