import Foundation
import Testing
@testable import Evaluation

/// A made-up corpus with the two leaks the real data has: a sibling subtask that repeats every target
/// passage (drop's question generation beside its answer generation), and another dataset that quotes some
/// of them; several questions per passage.
@Suite struct HeldOutSplitTests {
    static let target = "subtask900_toy_answer_generation"
    static let sibling = "subtask899_toy_question_generation"

    static func passage(_ k: Int) -> String {
        "The team number \(k) travelled to the northern city and played a long game in the rain, scoring \(k % 7) goals before the break while the crowd of \(k * 13) people watched"
    }

    static func rows() -> [HeldOutSplit.Row] {
        var rows: [HeldOutSplit.Row] = []
        for k in 0..<60 {
            for q in 0..<5 {
                rows.append(.init(source: target, dataset: "toy", prompt: "Definition: answer the question.\nPassage: \(passage(k))\nQuestion: how many goals, \(q)?",
                                  response: "\(k % 7)"))
            }
            rows.append(.init(source: sibling, dataset: "toy", prompt: "Definition: write a question.\nPassage: \(passage(k))", response: "How many goals?"))
        }
        for i in 0..<400 {
            // Every other row of the other dataset quotes a target passage, punctuation and case changed.
            let quoted = i % 2 == 0 ? " Also: " + passage(i % 60).uppercased().replacingOccurrences(of: ",", with: " ;") : ""
            rows.append(.init(source: "subtask800_other_task", dataset: "other", prompt: "Definition: copy.\nText: row \(i) is about plants and water\(quoted)",
                              response: "plants \(i)"))
        }
        return rows
    }

    static func dataset(_ source: String) -> String { source.contains("toy") ? "toy" : "other" }

    static func split(targetShare: Double = 0) throws -> HeldOutSplit {
        var p = HeldOutSplit.Parameters(target: target, zvalRows: 20, testRows: 60, poolRows: 150, pretrainRows: 150, targetShare: targetShare)
        p.seed = 3
        return try HeldOutSplit(rows: rows(), parameters: p, dataset: dataset)
    }

    @Test func contextsAreThePassagesNotTheQuestions() {
        let rows = Self.rows()
        // Over the subtask's rows, the shared prefix is its definition (over one passage's rows it would
        // run into the passage: the split always takes all of the target's rows).
        let prefix = ContextKey.commonPrefix(rows.filter { $0.source == Self.target }.map(\.prompt))
        #expect(prefix == "Definition: answer the question.\n")
        let contexts = ContextKey.contexts(prompt: rows[0].prompt, prefix: prefix)
        #expect(contexts == [ContextKey.normalize(Self.passage(0))])
        // Another row of the same passage has the same key; a ropes-like input gives background and story.
        #expect(ContextKey.contexts(prompt: rows[3].prompt, prefix: prefix) == contexts)
        let ropes = "Background Paragraph: Passive transport occurs when a substance passes through the membrane without any energy at all. \nStory: A man put two cups of water with different amounts of salt on the table and walked away. \nQuestion: Which cup?"
        #expect(ContextKey.contexts(prompt: ropes, prefix: "").count == 2)
    }

    @Test func noContextIsInTwoPartsAndNoSiblingIsTrainedOn() throws {
        let rows = Self.rows()
        for share in [0.0, 0.1] {
            let split = try Self.split(targetShare: share)
            #expect(split.zval.count == 20 && split.test.count == 60)
            let prefix = ContextKey.commonPrefix(rows.filter { $0.source == Self.target }.map(\.prompt))
            func contexts(_ part: [Int]) -> Set<String> {
                Set(part.filter { rows[$0].source == Self.target }.flatMap { ContextKey.contexts(prompt: rows[$0].prompt, prefix: prefix) })
            }
            let inPool = contexts(split.pool)
            #expect(contexts(split.zval).isDisjoint(with: contexts(split.test)))
            #expect(inPool.isDisjoint(with: contexts(split.test)) && inPool.isDisjoint(with: contexts(split.zval)))
            #expect(share == 0 ? inPool.isEmpty : !inPool.isEmpty)
            #expect(!(split.pool + split.pretrain).contains { rows[$0].source == Self.sibling })
            #expect(split.siblingSubtasks == [Self.sibling] && split.siblingRows == 60)
            // 80 held-out rows cover ≥ 16 of the 60 passages; half of the other rows quote an even one.
            #expect(split.contaminatedRowsSkipped > 0)
            let overlap = split.measureOverlap(rows: rows, target: Self.target, dataset: Self.dataset)
            #expect(overlap.isZero, "\(overlap)")
            #expect(overlap.testContexts >= 12 && overlap.zvalContexts >= 4)
        }
    }

    /// A noisy Z_val (issue 27): a quarter of it replaced by rows of other datasets that are in neither
    /// the pool nor θ0's text; the rest is the clean split's Z_val, and test and the pool do not move.
    @Test func aQuarterOfZvalOffTargetComesFromOutsideThePoolAndTheta0Text() throws {
        let rows = Self.rows()
        let clean = try Self.split()
        var p = HeldOutSplit.Parameters(target: Self.target, zvalRows: 20, testRows: 60, poolRows: 150, pretrainRows: 150, targetShare: 0)
        p.seed = 3
        p.zvalOffTargetShare = 0.25
        let noisy = try HeldOutSplit(rows: rows, parameters: p, dataset: Self.dataset)
        #expect(noisy.zval.count == 20 && noisy.zvalOffTarget == 5)
        #expect(noisy.zval.filter { rows[$0].source != Self.target }.count == 5)
        #expect(Array(noisy.zval.prefix(15)) == Array(clean.zval.prefix(15)))
        #expect(noisy.test == clean.test && noisy.pool == clean.pool && noisy.pretrain == clean.pretrain)
        #expect(Set(noisy.zval).isDisjoint(with: noisy.pool + noisy.pretrain))
        p.zvalOffTargetShare = 0.99
        p.zvalRows = 20
        // 20 more clean rows of the other dataset are not left after the pool and θ0's text here.
        p.pretrainRows = 400
        #expect(throws: EvaluationError.self) { try HeldOutSplit(rows: rows, parameters: p, dataset: Self.dataset) }
    }

    /// The measurement is computed, not assumed: a pool that holds a sibling row and a quoting row is caught.
    @Test func theMeasurementCatchesLeaks() throws {
        let rows = Self.rows()
        var split = try Self.split()
        let prefix = ContextKey.commonPrefix(rows.filter { $0.source == Self.target }.map(\.prompt))
        // A test passage some row of the other dataset quotes (the even ones).
        let testPassage = try #require(split.test.lazy.map { ContextKey.contexts(prompt: rows[$0].prompt, prefix: prefix)[0] }
            .first { p in rows.contains { $0.dataset == "other" && ContextKey.normalize($0.prompt).contains(p) } })
        let sibling = try #require(rows.indices.first { rows[$0].source == Self.sibling && ContextKey.normalize(rows[$0].prompt).contains(testPassage) })
        split.pool.append(sibling)
        let quoting = try #require(rows.indices.first { rows[$0].dataset == "other" && ContextKey.normalize(rows[$0].prompt).contains(testPassage) })
        split.pretrain.append(quoting)
        let overlap = split.measureOverlap(rows: rows, target: Self.target, dataset: Self.dataset)
        #expect(overlap.testContextsInPool == 1 && overlap.testContextsInTheta0Text == 1 && overlap.siblingRowsInPool == 1)
        #expect(!overlap.isZero)
    }

    @Test func tooFewGroupsIsAnErrorThatSaysWhatToLower() {
        var p = HeldOutSplit.Parameters(target: Self.target, zvalRows: 200, testRows: 200, poolRows: 10, pretrainRows: 10, targetShare: 0)
        p.seed = 0
        #expect(throws: EvaluationError.self) { try HeldOutSplit(rows: Self.rows(), parameters: p, dataset: Self.dataset) }
    }

    @Test func overlapFindsWholeContextsOnly() {
        let index = ContextOverlap(contexts: [ContextKey.normalize(Self.passage(1)), ContextKey.normalize(Self.passage(2))])
        #expect(index.contained(in: "intro " + Self.passage(2).lowercased() + " outro") == [1])
        // The first 20 words of a passage are not the passage.
        let prefix = ContextKey.words(Self.passage(1)).prefix(20).joined(separator: " ")
        #expect(index.contained(in: prefix).isEmpty)
    }
}
