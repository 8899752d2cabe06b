import Foundation
import Selection

/// Z_val, test, the pool and θ0's text for one target subtask, held out by dataset and by context.
///
/// - **By dataset.** No row of another subtask of the target's source dataset (its siblings: ropes' question
///   generation beside ropes' answer generation) is in the pool or θ0's text, in either setting.
/// - **By context.** The target's rows are grouped by shared context (``ContextKey``: rows sharing any
///   passage / background / situation / story fall in one group, transitively), the groups shuffled, and
///   whole groups go to Z_val, then test, then (in-pool setting) the pool's target rows; the rows of a
///   group cut at a boundary are dropped, never moved to the next part. So no context is in two parts.
/// - **Decontaminated.** A non-target row that contains a Z_val or test context word for word (another
///   dataset quoting the same passage) is left out of the pool and θ0's text, and counted.
///
/// The overlap the report prints is measured afresh on the result by ``measureOverlap(rows:)``.
public struct HeldOutSplit: Sendable {
    public struct Row: Sendable {
        public var source: String
        public var dataset: String
        public var prompt: String
        public var response: String
        public init(source: String, dataset: String, prompt: String, response: String) {
            self.source = source
            self.dataset = dataset
            self.prompt = prompt
            self.response = response
        }
    }

    public struct Parameters: Sendable {
        public var target: String
        public var zvalRows: Int
        public var testRows: Int
        public var poolRows: Int
        public var pretrainRows: Int
        /// Share of the pool made of the target's own (held-out-by-context) rows; 0 = transfer setting.
        public var targetShare: Double
        /// Share of Z_val replaced by rows of other datasets (a noisy Z_val, issue 27), in neither the
        /// pool nor θ0's text; |Z_val| stays `zvalRows`.
        public var zvalOffTargetShare = 0.0
        public var seed: UInt64 = 0
        public init(target: String, zvalRows: Int, testRows: Int, poolRows: Int, pretrainRows: Int, targetShare: Double) {
            self.target = target
            self.zvalRows = zvalRows
            self.testRows = testRows
            self.poolRows = poolRows
            self.pretrainRows = pretrainRows
            self.targetShare = targetShare
        }
    }

    /// Row indices of each part.
    public var zval: [Int] = [], test: [Int] = [], pool: [Int] = [], pretrain: [Int] = []
    /// What the split left out, and why (for the report).
    public var targetDataset = ""
    public var siblingSubtasks: [String] = []
    public var siblingRows = 0
    public var targetGroups = 0
    public var targetRowsWithoutContext = 0
    /// Target rows of a group cut at a part boundary (dropped).
    public var targetRowsDropped = 0
    /// Non-target rows left out of the pool or θ0's text because they contain a held-out context.
    public var contaminatedRowsSkipped = 0
    /// Z_val rows from other datasets (``Parameters/zvalOffTargetShare``), at the end of `zval`.
    public var zvalOffTarget = 0

    public init(rows: [Row], parameters p: Parameters, dataset: (String) -> String) throws {
        targetDataset = dataset(p.target)
        var targetRows: [Int] = [], others: [Int] = []
        var siblings = Set<String>()
        for (i, row) in rows.enumerated() {
            if row.source == p.target { targetRows.append(i) }
            else if dataset(row.source) == targetDataset { siblings.insert(row.source); siblingRows += 1 }
            else { others.append(i) }
        }
        siblingSubtasks = siblings.sorted()

        // Group the target's rows by shared context (union-find over context keys).
        let prefix = ContextKey.commonPrefix(targetRows.map { rows[$0].prompt })
        var parent = Array(targetRows.indices)
        func find(_ x: Int) -> Int { var x = x; while parent[x] != x { parent[x] = parent[parent[x]]; x = parent[x] }; return x }
        var firstWithContext: [String: Int] = [:]
        var contexts: [[String]] = []
        for (k, i) in targetRows.enumerated() {
            let cs = ContextKey.contexts(prompt: rows[i].prompt, prefix: prefix)
            contexts.append(cs)
            if cs.isEmpty { targetRowsWithoutContext += 1 }
            for c in cs {
                if let other = firstWithContext[c] { parent[find(k)] = find(other) } else { firstWithContext[c] = k }
            }
        }
        var groups: [Int: [Int]] = [:]
        for k in targetRows.indices { groups[find(k), default: []].append(k) }
        var random = SplitMix64(seed: p.seed)
        // Sorted before the shuffle so the order does not depend on dictionary iteration.
        var ordered = groups.values.map { $0.sorted() }.sorted { $0[0] < $1[0] }
        ordered.shuffle(using: &random)
        targetGroups = ordered.count

        var cursor = 0
        func take(_ count: Int) -> [Int] {
            var out: [Int] = []
            while out.count < count, cursor < ordered.count {
                let group = ordered[cursor]
                cursor += 1
                let room = count - out.count
                out += group.prefix(room).map { targetRows[$0] }
                targetRowsDropped += max(0, group.count - room)
            }
            return out
        }
        zval = take(p.zvalRows)
        test = take(p.testRows)
        guard zval.count == p.zvalRows, test.count == p.testRows else {
            throw EvaluationError("\(p.target) has \(targetRows.count) rows in \(ordered.count) context groups, too few for Z_val \(p.zvalRows) + test \(p.testRows): lower --zval or --test-rows")
        }
        let heldOut = ContextOverlap(contexts: (zval + test).flatMap { contexts[targetRows.firstIndex(of: $0)!] })

        others.shuffle(using: &random)
        var next = 0
        func takeClean(_ count: Int) -> [Int] {
            var out: [Int] = []
            while out.count < count, next < others.count {
                let i = others[next]
                next += 1
                if heldOut.contained(in: rows[i].prompt + "\n" + rows[i].response).isEmpty { out.append(i) } else { contaminatedRowsSkipped += 1 }
            }
            return out
        }
        pool = takeClean(p.poolRows)
        if p.targetShare > 0 {
            // share = t / (t + others) → t = share / (1 − share) · others.
            let wanted = Int((p.targetShare / (1 - p.targetShare) * Double(pool.count)).rounded())
            let inPool = take(wanted)
            guard inPool.count == wanted else {
                throw EvaluationError("--target-share \(p.targetShare) needs \(wanted) \(p.target) rows in the pool but only \(inPool.count) are left in whole context groups after Z_val and test: lower it, or --pool")
            }
            pool += inPool
            pool.shuffle(using: &random)
        }
        pretrain = takeClean(p.pretrainRows)
        let offTarget = Int((p.zvalOffTargetShare * Double(zval.count)).rounded())
        if offTarget > 0 {
            let noise = takeClean(offTarget)
            guard noise.count == offTarget else {
                throw EvaluationError("--zval-off-target \(p.zvalOffTargetShare) needs \(offTarget) rows outside the pool and θ0's text, but only \(noise.count) are left: lower --pool or --pretrain-rows")
            }
            zvalOffTarget = noise.count
            zval = Array(zval.dropLast(offTarget)) + noise
        }
    }

    /// The measured overlap of the held-out parts with everything a model trains on.
    public struct Overlap: Codable, Sendable, Equatable {
        /// Distinct contexts of the test rows, of Z_val's rows.
        public var testContexts: Int
        public var zvalContexts: Int
        /// Test contexts that occur word for word in a pool row, in θ0's text, in a Z_val row.
        public var testContextsInPool: Int
        public var testContextsInTheta0Text: Int
        public var testContextsInZval: Int
        /// Z_val contexts that occur in a pool row or in θ0's text.
        public var zvalContextsInPool: Int
        public var zvalContextsInTheta0Text: Int
        /// Pool and θ0 rows from the target's source dataset other than the target subtask (0 by construction).
        public var siblingRowsInPool: Int
        public var siblingRowsInTheta0Text: Int

        public var isZero: Bool {
            testContextsInPool + testContextsInTheta0Text + testContextsInZval + zvalContextsInPool + zvalContextsInTheta0Text
                + siblingRowsInPool + siblingRowsInTheta0Text == 0
        }
    }

    /// Scans the pool and θ0's rows for every test and Z_val context (computed, not assumed from the split's construction).
    public func measureOverlap(rows: [Row], target: String, dataset: (String) -> String) -> Overlap {
        let prefix = ContextKey.commonPrefix(rows.filter { $0.source == target }.map(\.prompt))
        func contexts(_ part: [Int]) -> [String] {
            Array(Set(part.flatMap { ContextKey.contexts(prompt: rows[$0].prompt, prefix: prefix) })).sorted()
        }
        func text(_ i: Int) -> String { rows[i].prompt + "\n" + rows[i].response }
        let testContexts = contexts(test), zvalContexts = contexts(zval)
        let testIndex = ContextOverlap(contexts: testContexts), zvalIndex = ContextOverlap(contexts: zvalContexts)
        let poolTexts = pool.map(text), theta0Texts = pretrain.map(text)
        let targetDataset = dataset(target)
        func siblings(_ part: [Int]) -> Int { part.filter { rows[$0].source != target && dataset(rows[$0].source) == targetDataset }.count }
        return Overlap(testContexts: testContexts.count, zvalContexts: zvalContexts.count,
                       testContextsInPool: testIndex.contained(inAny: poolTexts).count,
                       testContextsInTheta0Text: testIndex.contained(inAny: theta0Texts).count,
                       testContextsInZval: testIndex.contained(inAny: zval.map(text)).count,
                       zvalContextsInPool: zvalIndex.contained(inAny: poolTexts).count,
                       zvalContextsInTheta0Text: zvalIndex.contained(inAny: theta0Texts).count,
                       siblingRowsInPool: siblings(pool), siblingRowsInTheta0Text: siblings(pretrain))
    }
}
