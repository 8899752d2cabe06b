import Daemon
import Foundation
import PQ
import Selection
import Testing
import TovTesting

/// The behaviour that makes ToV worth running: with Z_val drawn from one kind of text and a pool
/// where that kind is a small minority, the daemon's top-scored rows are that kind far above its
/// pool share. Shown twice: on four kinds of generated question/answer text with distinct
/// vocabularies, and on real BIG-bench rows of four subtasks (a small committed fixture).
@Suite("Scores are enriched for the Z_val kind", .serialized)
struct EnrichmentTests {
    /// Rows of one kind: a template filled from word lists by a seeded generator, so rows differ.
    static func rows(kind: String, count: Int, seed: UInt64) -> [(prompt: String, response: String)] {
        var rng = SplitMix64(seed: seed)
        func pick(_ words: [String]) -> String { words[Int(rng.next() % UInt64(words.count))] }
        func number(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(rng.next() % UInt64(range.count)) }
        return (0..<count).map { _ in
            switch kind {
            case "weather":
                let city = pick(["Oslo", "Lima", "Cairo", "Perth", "Quito", "Dakar", "Hanoi", "Turin"])
                return ("What is the weather like in \(city) today?",
                        "In \(city) it is \(pick(["sunny", "cloudy", "rainy", "windy", "foggy"])) and \(number(-5...35)) degrees, with \(pick(["light", "strong", "gusty", "calm"])) winds from the \(pick(["north", "south", "east", "west"])).")
            case "arithmetic":
                let a = number(10...999), b = number(10...999)
                return ("Compute \(a) \(pick(["plus", "added to"])) \(b).", "\(a) + \(b) = \(a + b)")
            case "recipe":
                let food = pick(["rice", "lentils", "potatoes", "pasta", "beans", "barley"])
                return ("How long should I cook \(food)?",
                        "Simmer the \(food) for \(number(5...45)) minutes, stir in \(pick(["salt", "cumin", "butter", "garlic", "pepper"])) and serve.")
            default:
                let item = pick(["keyboard", "router", "printer", "monitor", "laptop", "speaker"])
                return ("My \(item) stopped working. What should I do?",
                        "Unplug the \(item), wait \(number(5...60)) seconds, reconnect it and check the \(pick(["cable", "driver", "fuse", "settings"])).")
            }
        }
    }

    static func insert(_ rows: [(prompt: String, response: String)], kind: String, into table: String, on c: Connection) async throws {
        try await c.execute("""
            INSERT INTO tov.\(table) (prompt, response\(table == "candidates" ? ", source" : ""))
            SELECT p, r\(table == "candidates" ? ", $3" : "") FROM unnest($1::text[], $2::text[]) AS t(p, r)
            """, table == "candidates" ? [rows.map(\.prompt), rows.map(\.response), kind] : [rows.map(\.prompt), rows.map(\.response)])
    }

    /// Runs the daemon on `pool` (rows with a `source`) and `zval` with a tiny surrogate until the
    /// pipeline settles, then returns the share of `kind` in the scored pool and in its top 10 % by φ.
    static func enrichment(pool: [(kind: String, rows: [(prompt: String, response: String)])],
                           zval: [(prompt: String, response: String)], kind: String,
                           surrogate: String, pretrainSteps: Int) async throws -> (pool: Double, top: Double) {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 200, budgetRows: 60, bins: 4))
            try await c.simpleQuery("""
                UPDATE tov.settings SET value = '\(surrogate)' WHERE key = 'surrogate';
                UPDATE tov.settings SET value = '\(pretrainSteps)' WHERE key = 'pretrain_steps';
                UPDATE tov.settings SET value = '0.003' WHERE key = 'lr';
                """)
            for part in pool { try await insert(part.rows, kind: part.kind, into: "candidates", on: c) }
            try await insert(zval, kind: kind, into: "validation", on: c)
            let daemon = try TovdProcess(["run", "--metrics-port=-1", "--poll-interval", "0.2", "--batch-size", "200"], conninfo: conninfo)
            defer { daemon.terminate() }
            let figures = try await PipelineFigures.settle(on: c, timeout: .seconds(240))
            #expect(figures.isConsistent, "\(figures)\n\(daemon.log.suffix(2000))")

            let shares = try await c.query("""
                WITH ranked AS (
                    SELECT x.source, row_number() OVER (ORDER BY s.score DESC, s.candidate_id) AS rank, count(*) OVER () AS n
                    FROM tov.scores s JOIN tov.candidates x ON x.id = s.candidate_id
                    JOIN tov.model_versions m USING (model_version) WHERE m.status = 'complete'
                )
                SELECT avg((source = $1)::int)::float8, avg((source = $1)::int) FILTER (WHERE rank <= n / 10)::float8
                FROM ranked
                """, [kind]).first!
            let poolShare = try shares.get(Double.self, 0)
            let topShare = try shares.get(Double.self, 1)
            print("enrichment: \(kind) is \(String(format: "%.1f", 100 * poolShare)) % of the scored pool and \(String(format: "%.1f", 100 * topShare)) % of the top 10 % by score (\(String(format: "%.1f", topShare / poolShare))×)")
            return (poolShare, topShare)
        }
    }

    @Test func topScoredRowsAreEnrichedForTheValidationKind() async throws {
        // Pool: 10 % weather, 30 % each of the other kinds, inserted kind by kind.
        var pool = [(kind: "weather", rows: Self.rows(kind: "weather", count: 80, seed: 1))]
        for (i, kind) in ["arithmetic", "recipe", "support"].enumerated() {
            pool.append((kind, Self.rows(kind: kind, count: 240, seed: UInt64(10 + i))))
        }
        let shares = try await Self.enrichment(
            pool: pool, zval: Self.rows(kind: "weather", count: 40, seed: 99), kind: "weather",
            surrogate: #"{"layers": 1, "width": 32, "heads": 2, "context": 64, "vocab": 300}"#, pretrainSteps: 40)
        // Threshold: at least 4× the pool share (a random top decile would be 1×); measured 9.5× (100 %).
        #expect(shares.pool > 0.05 && shares.top >= 4 * shares.pool, "top-decile share \(shares.top) vs pool share \(shares.pool)")
    }

    /// The same on real text: BIG-bench natural_instructions rows of four subtasks
    /// (Fixtures/real_text.jsonl, written by scripts/make-enrichment-fixture.py). Z_val is 40 rows of
    /// QASC answer generation; the pool holds 80 other QASC rows (10 %) and 240 rows each of
    /// CosmosQA answers, DROP questions and WinoGrande sentences.
    @Test func topScoredRealRowsAreEnrichedForTheValidationTask() async throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/real_text.jsonl")
        struct Row: Decodable { var split, source, prompt, response: String }
        let rows = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(Row.self, from: Data($0.utf8))
        }
        let target = "subtask041_qasc_answer_generation"
        var pool: [(kind: String, rows: [(prompt: String, response: String)])] = []
        for row in rows where row.split == "pool" {
            if pool.last?.kind != row.source { pool.append((row.source, [])) }
            pool[pool.count - 1].rows.append((row.prompt, row.response))
        }
        let zval = rows.filter { $0.split == "zval" }.map { (prompt: $0.prompt, response: $0.response) }
        let shares = try await Self.enrichment(
            pool: pool, zval: zval, kind: target,
            surrogate: #"{"layers": 1, "width": 32, "heads": 2, "context": 64, "vocab": 512}"#, pretrainSteps: 60)
        // Threshold: at least 4× the pool share (random would be 1×); measured 8.1× (85 % of the top decile).
        #expect(shares.pool > 0.05 && shares.top >= 4 * shares.pool, "top-decile share \(shares.top) vs pool share \(shares.pool)")
    }
}
