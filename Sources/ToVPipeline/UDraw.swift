import Selection

/// U, the base subset (DESIGN.md §4): a uniform sample of the pool, fixed by the seed.
///
/// Rows are ranked by (md5("<seed>:u:<id>") as lowercase hex compared byte-wise, id) and the first
/// `size` are U. The daemon draws U inside PostgreSQL with the same order
/// (`ORDER BY md5(seed::text || ':u:' || candidate_id::text) COLLATE "C", candidate_id LIMIT u_size`
/// in the trainer), so the pool never leaves the database; `OnePipelineTests` holds the two equal, as
/// the selection's SQL is held equal to ``Selection/select(_:settings:)``. A new row enters U with the
/// right probability at a rebase and nothing else moves.
public enum UDraw {
    /// The hash U is ranked by.
    public static func key(id: Int64, seed: Int64) -> String {
        MD5.hex(Array("\(seed):u:\(id)".utf8))
    }

    /// The ids of U among `ids` (all of them when there are at most `size`), ascending: the order every
    /// trajectory sees U in.
    public static func draw(ids: [Int64], size: Int, seed: Int64) -> [Int64] {
        ranked(ids: ids, seed: seed).prefix(max(size, 0)).sorted()
    }

    /// Every id in U's rank order: U is the first `u_size`, and the ones after it are a uniform sample
    /// of the rest (held-out rows for a study of θ0, ``draw(ids:size:seed:)``'s U left out).
    public static func ranked(ids: [Int64], seed: Int64) -> [Int64] {
        ids.map { (key: key(id: $0, seed: seed), id: $0) }
            .sorted { $0.key != $1.key ? $0.key < $1.key : $0.id < $1.id }
            .map(\.id)
    }
}
