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
/// per bin; the update subtracts them from the counts and the same walk closes the gaps.
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
        // Deletions committed so far. Reports for other versions are stale (rows of a version are
        // binned only while it is the selected one) and are dropped with the rest.
        for row in try await tx.query(consumeRemoved) {
            guard !row.isNull(0) else { return try await rebin(in: tx, modelVersion: modelVersion, bins: bins, seed: seed) }
            guard Int(try row.get(Int32.self, 0)) == modelVersion else { continue }
            let bin = row.isNull(1) ? -1 : Int(try row.get(Int32.self, 1))
            guard counts.indices.contains(bin) else { return try await rebin(in: tx, modelVersion: modelVersion, bins: bins, seed: seed) }
            counts[bin] -= Int(try row.get(Int64.self, 2))
        }
        let new = try await tx.query(unbinnedRows, [modelVersion]).map { Key(tokens: try $0.get(Int32.self, 1), id: try $0.get(Int64.self, 0)) }
        // Many new rows against a small pool: one sort is cheaper than walking boundaries.
        if new.count > counts.reduce(0, +) {
            return try await rebin(in: tx, modelVersion: modelVersion, bins: bins, seed: seed)
        }

        // 1. Each new row joins the last non-empty bin whose first key is ≤ its key (bin 0 if none).
        if !new.isEmpty {
            var firsts: [(bin: Int, key: Key)] = []
            for row in try await tx.query(firstKeyOfEachBin, [modelVersion, bins]) {
                firsts.append((Int(try row.get(Int32.self, 0)), Key(tokens: try row.get(Int32.self, 1), id: try row.get(Int64.self, 2))))
            }
            var newBins: [Int32] = []
            newBins.reserveCapacity(new.count)
            for key in new {
                let bin = firsts.last(where: { $0.key <= key })?.bin ?? 0
                newBins.append(Int32(bin))
                counts[bin] += 1
            }
            try await tx.execute(binNewRows, [modelVersion, new.map(\.id), newBins, String(seed)])
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
        let rows = try await tx.query(rebinAll, [modelVersion, bins, String(seed)]).first?.get(Int64.self, 0) ?? 0
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

    /// $1 model version, $2 bins, $3 seed. Returns the number of rows binned (as counted by ntile).
    static let rebinAll = """
        WITH consumed AS (DELETE FROM tov.scores_removed
        ), ranked AS MATERIALIZED (
            SELECT candidate_id, ntile($2::int) OVER (ORDER BY tokens, candidate_id) - 1 AS bin
            FROM tov.scores WHERE model_version = $1::int
        ), binned AS (
            UPDATE tov.scores s SET length_bin = r.bin, random_key = \(randomKey(seed: "$3::text", id: "s.candidate_id"))
            FROM ranked r WHERE s.model_version = $1::int AND s.candidate_id = r.candidate_id
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM ranked), (SELECT count(*) FROM binned)
        """

    /// Takes the deletion reports: model version, bin and rows per report (NULL version: TRUNCATE).
    static let consumeRemoved = "DELETE FROM tov.scores_removed RETURNING model_version, length_bin, rows"

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

    /// $1 model version, $2 candidate ids, $3 their bins, $4 seed.
    static let binNewRows = """
        UPDATE tov.scores s SET length_bin = n.bin, random_key = \(randomKey(seed: "$4::text", id: "s.candidate_id"))
        FROM unnest($2::bigint[], $3::int[]) AS n(id, bin)
        WHERE s.model_version = $1::int AND s.candidate_id = n.id
        """

    /// Moves the last $3 rows of bin $2 (version $1) into bin $2 + 1.
    static let moveLastRowsUp = """
        UPDATE tov.scores s SET length_bin = $2::int + 1
        WHERE s.model_version = $1::int AND s.candidate_id IN (
            SELECT candidate_id FROM tov.scores
            WHERE model_version = $1::int AND length_bin = $2::int
            ORDER BY tokens DESC, candidate_id DESC LIMIT $3::int)
        """

    /// Moves the first $3 rows after bin $2 (version $1) into bin $2. The bins are ordered ranges,
    /// so (length_bin, tokens, id) order over bins > $2 is the (tokens, id) order.
    static let moveFirstRowsDown = """
        UPDATE tov.scores s SET length_bin = $2::int
        WHERE s.model_version = $1::int AND s.candidate_id IN (
            SELECT candidate_id FROM tov.scores
            WHERE model_version = $1::int AND length_bin > $2::int
            ORDER BY length_bin, tokens, candidate_id LIMIT $3::int)
        """
}
