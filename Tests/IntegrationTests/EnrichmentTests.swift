import Daemon
import Foundation
import PQ
import Selection
import Testing
import TovTesting

/// The behaviour that makes ToV worth running: with Z_val drawn from one kind of text and a pool
/// where that kind is a small minority, the daemon's top-scored rows are that kind far above its
/// pool share. Four kinds of generated question/answer text with distinct vocabularies stand in
/// for tasks (the real-data version is docs/evaluation.md's enrichment table and the README demo).
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

    @Test func topScoredRowsAreEnrichedForTheValidationKind() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 200, budgetRows: 60, bins: 4))
            try await c.simpleQuery("""
                UPDATE tov.settings SET value = '{"layers": 1, "width": 32, "heads": 2, "context": 64, "vocab": 300}' WHERE key = 'surrogate';
                UPDATE tov.settings SET value = '40' WHERE key = 'pretrain_steps';
                UPDATE tov.settings SET value = '0.003' WHERE key = 'lr';
                """)
            // Pool: 10 % weather, 30 % each of the other kinds, shuffled by insertion order per kind.
            try await Self.insert(Self.rows(kind: "weather", count: 80, seed: 1), kind: "weather", into: "candidates", on: c)
            for (i, kind) in ["arithmetic", "recipe", "support"].enumerated() {
                try await Self.insert(Self.rows(kind: kind, count: 240, seed: UInt64(10 + i)), kind: kind, into: "candidates", on: c)
            }
            try await Self.insert(Self.rows(kind: "weather", count: 40, seed: 99), kind: "weather", into: "validation", on: c)
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
                SELECT avg((source = 'weather')::int)::float8,
                       avg((source = 'weather')::int) FILTER (WHERE rank <= n / 10)::float8
                FROM ranked
                """).first!
            let poolShare = try shares.get(Double.self, 0)
            let topShare = try shares.get(Double.self, 1)
            print("enrichment: weather is \(String(format: "%.1f", 100 * poolShare)) % of the scored pool and \(String(format: "%.1f", 100 * topShare)) % of the top 10 % by score (\(String(format: "%.1f", topShare / poolShare))×)")
            // Threshold: at least 4× the pool share (a random top decile would be 1×); measured 9.5× (100 %).
            #expect(poolShare > 0.05 && topShare >= 4 * poolShare, "top-decile share \(topShare) vs pool share \(poolShare)")
        }
    }
}
