/// The reference selection: computed from scratch over every eligible row.
///
/// The daemon computes the same thing in SQL (Daemon/Store/SelectionWriter.swift) so Postgres,
/// not the daemon, holds the pool; a property test checks that the two agree. Every rule below is
/// therefore exact, tie-breaks included:
///
/// - Length bins: like SQL `ntile(k) OVER (ORDER BY length, id)`: rows sorted by (length, id); with
///   N rows the first N mod k bins hold ⌊N/k⌋+1 rows, the rest ⌊N/k⌋. Bins are numbered 0..<k.
/// - n = budget.rowCount(eligible: N).
/// - score_random: s = ⌊n · scoreShare⌋ (n/2 by default; ``SelectionSettings/scoreRows(budget:)``). Bin b's quota is s/k, plus 1 for b < s mod k. Each bin gives its
///   top quota rows by (score desc, id asc). The rest of the budget, n − taken, comes from the other
///   rows in (randomKey asc, id asc) order. Reasons: .score, .random.
/// - score_dsir: score_random's score half; the rest of the budget from the other rows in
///   (``NgramImportance/resamplingKey(logWeight:id:seed:)`` desc, id asc) order: importance
///   resampling by the rows' n-gram weights. Reasons: .score, .importance.
/// - score_only: the same binned top with s = n; quotas a bin cannot fill stay unfilled.
/// - With a ``ClusterQuota`` (`tovd evaluate` only), each bin's top comes from the rows that rank
///   within their cluster's cap in the bin; places left open go to the rest of the budget (score_only
///   has none: they stay open).
/// - score_only_unbinned: top n by (score desc, id asc).
/// - random: first n by (randomKey, id).
/// - uncertainty: top n by (ψ desc, id asc).
public func select(_ rows: [ScoredRow], settings: SelectionSettings, clusterQuota: ClusterQuota? = nil) -> SelectionResult {
    let k = max(settings.bins, 1)
    let n = settings.budget.rowCount(eligible: rows.count)
    let bins = lengthBins(rows, bins: k)
    var chosen: [Int64: SelectedItem] = [:]
    chosen.reserveCapacity(n)

    func take(_ row: ScoredRow, _ reason: SelectedItem.Reason) {
        chosen[row.id] = SelectedItem(id: row.id, reason: reason, lengthBin: bins[row.id]!, score: row.score)
    }
    func byScore(_ a: ScoredRow, _ b: ScoredRow) -> Bool { a.score != b.score ? a.score > b.score : a.id < b.id }

    switch settings.policy {
    case .scoreRandom, .scoreOnly, .scoreDSIR:
        let s = settings.scoreRows(budget: n)
        for (bin, members) in rowsByBin(rows, bins: bins, k: k).enumerated() {
            let quota = binQuota(bin: bin, scoreRows: s, bins: k)
            let ranked = members.sorted(by: byScore)
            let competing = clusterQuota.map { $0.competing(ranked, cap: $0.cap(binQuota: quota)) } ?? ranked
            for row in competing.prefix(quota) { take(row, .score) }
        }
        let remaining = rows.filter { chosen[$0.id] == nil }
        let rest = max(n - chosen.count, 0)
        if settings.policy == .scoreRandom {
            for row in randomOrder(remaining, seed: settings.seed).prefix(rest) { take(row, .random) }
        } else if settings.policy == .scoreDSIR {
            let keyed = remaining.map { (key: NgramImportance.resamplingKey(logWeight: $0.importance, id: $0.id, seed: settings.seed), row: $0) }
            for (_, row) in keyed.sorted(by: { $0.key != $1.key ? $0.key > $1.key : $0.row.id < $1.row.id }).prefix(rest) { take(row, .importance) }
        }
    case .scoreOnlyUnbinned:
        for row in rows.sorted(by: byScore).prefix(n) { take(row, .score) }
    case .uncertainty:
        let ordered = rows.sorted { $0.uncertainty != $1.uncertainty ? $0.uncertainty > $1.uncertainty : $0.id < $1.id }
        for row in ordered.prefix(n) { take(row, .score) }
    case .random:
        for row in randomOrder(rows, seed: settings.seed).prefix(n) { take(row, .random) }
    }
    return SelectionResult(items: chosen.values.sorted { $0.id < $1.id }, budget: n, eligible: rows.count)
}

/// Rows of bin b get s/k places plus one for the first s mod k bins.
public func binQuota(bin: Int, scoreRows s: Int, bins k: Int) -> Int {
    s / k + (bin < s % k ? 1 : 0)
}

/// Equal-count length bins exactly like `ntile(k) OVER (ORDER BY length, id) - 1`.
public func lengthBins(_ rows: [ScoredRow], bins k: Int) -> [Int64: Int] {
    let sorted = rows.sorted { $0.length != $1.length ? $0.length < $1.length : $0.id < $1.id }
    let n = sorted.count
    let small = n / k, large = small + 1, largeBins = n % k
    var result: [Int64: Int] = [:]
    result.reserveCapacity(n)
    for (index, row) in sorted.enumerated() {
        // The first `largeBins` bins hold `large` rows each, the rest `small`.
        let bin = index < largeBins * large ? index / large : largeBins + (index - largeBins * large) / max(small, 1)
        result[row.id] = bin
    }
    return result
}

func rowsByBin(_ rows: [ScoredRow], bins: [Int64: Int], k: Int) -> [[ScoredRow]] {
    var grouped = [[ScoredRow]](repeating: [], count: k)
    for row in rows { grouped[bins[row.id]!].append(row) }
    return grouped
}

/// Rows in the seeded random order (randomKey asc, id asc).
func randomOrder(_ rows: [ScoredRow], seed: Int64) -> [ScoredRow] {
    rows.map { (key: randomKey(id: $0.id, seed: seed), row: $0) }
        .sorted { $0.key != $1.key ? $0.key < $1.key : $0.row.id < $1.row.id }
        .map(\.row)
}

public struct SelectedItem: Equatable, Sendable {
    public enum Reason: String, Sendable { case score, random, importance }
    public var id: Int64
    public var reason: Reason
    public var lengthBin: Int
    public var score: Double
}

public struct SelectionResult: Equatable, Sendable {
    /// Sorted by id.
    public var items: [SelectedItem]
    /// n, the number of rows the budget asked for.
    public var budget: Int
    public var eligible: Int

    public var ids: [Int64] { items.map(\.id) }
}

/// Which rows entered and left between two selections.
public struct SelectionDiff: Equatable, Sendable {
    public var entered: [Int64]
    public var left: [Int64]

    public init(old: SelectionResult, new: SelectionResult) {
        let before = Set(old.ids), after = Set(new.ids)
        entered = after.subtracting(before).sorted()
        left = before.subtracting(after).sorted()
    }
}
