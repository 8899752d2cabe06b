import ArgumentParser
import Daemon
import EmbeddedPostgres
import Foundation
import Logging
import PQ
import Selection
import Surrogate

extension Tovd.Bench {
    /// The leader's selection update (the SQL that keeps `tov.selected` current) at growing pool
    /// sizes, against the Swift reference `select(...)` on the same scores in this process.
    struct SelectionBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "selection",
            abstract: "Cost of one selection update by pool size, against the in-memory reference select().",
            discussion: """
                Starts a private PostgreSQL cluster in --directory and fills tov.scores with synthetic \
                scored rows (random φ, ψ and lengths of 1–300 tokens; no model work), growing the pool \
                through each size of --rows. At each size it inserts --batch new scored rows --updates \
                times and times the update the leader runs after a scored batch (one transaction: \
                fold the new rows into the length bins, read the selection through indexes, switch \
                tov.selected by a diff). It also times one update from scratch, as after a model \
                switch or a change of bins or seed (every row re-binned). Then it loads the same \
                scores into this process, times the Swift reference select() on them, and checks that \
                tov.selected equals its result (rows, reasons and length bins). Insert → visible in tov.selected is about one scoring \
                batch plus one or two updates, so this is the part of that latency that grows with \
                the pool.
                  swift build -c release && .build/release/tovd bench selection --rows 10000,100000,1000000
                """)

        @Option(help: "Pool sizes to measure, in increasing order, comma-separated.") var rows = "10000,100000,1000000"
        @Option(help: "Timed updates per pool size.") var updates = 7
        @Option(help: "New scored rows before each update (a scoring batch).") var batch = 64
        @Option(help: "Selection policy.") var policy = Policy.scoreRandom.rawValue
        @Option(help: "Budget as a fraction of the scored pool.") var fraction = 0.05
        @Option(help: "Where the private cluster goes (emptied first).") var directory = "/var/tmp/tovd-bench-selection"

        func sizes() throws -> [Int] {
            let sizes = rows.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !sizes.isEmpty, sizes == sizes.sorted(), sizes.allSatisfy({ $0 >= 100 }) else {
                throw ValidationError("--rows must be increasing pool sizes of at least 100, e.g. 10000,100000")
            }
            return sizes
        }

        func validate() throws {
            _ = try sizes()
            guard Policy(rawValue: policy) != nil else {
                throw ValidationError("--policy must be one of \(Policy.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard updates >= 1, batch >= 1, fraction > 0, fraction <= 1 else {
                throw ValidationError("--updates and --batch must be at least 1, --fraction in (0, 1]")
            }
        }

        func run() async throws {
            let logger = Logger(label: "tovd.bench")
            let settings = SelectionSettings(budget: .fraction(fraction), policy: Policy(rawValue: policy)!)
            print("machine: \(CPUFeatures.summary)")
            print("policy \(policy), budget \(fraction) of the pool, \(settings.bins) length bins, \(batch) new rows before each of \(updates) updates")

            // The scores are written under the model version this makes.
            let (cluster, c, _) = try await Tovd.Bench.startDatabase(in: directory, epochs: 2, logger: logger)
            defer { try? cluster.stop(mode: .fast) }
            defer { c.close() }
            try await BenchQueries.randomSeedSet(0.2026, on: c)

            print("")
            print("pool rows   update p50   update max   from scratch   reference select()   update / reference   same rows")
            for size in try sizes() {
                let have = try await BenchQueries.scoreCount(modelVersion: 1, on: c)
                try await Self.addScoredRows(size - have, on: c)
                try await BenchQueries.jobDeleteAll(on: c)
                try await BenchQueries.statisticsRefresh(.scoresAndCandidates, vacuum: true, on: c)
                // Untimed: brings tov.selected to this pool size (and re-derives φ the first time).
                _ = try await c.transaction { tx in try await SelectionWriter.update(in: tx, modelVersion: 1, settings: settings) }

                var seconds: [Double] = []
                for _ in 0..<updates {
                    try await Self.addScoredRows(batch, on: c)
                    let started = ContinuousClock.now
                    _ = try await c.transaction { tx in try await SelectionWriter.update(in: tx, modelVersion: 1, settings: settings) }
                    seconds.append((ContinuousClock.now - started).seconds)
                }
                // From scratch: without stored bin counts the update re-bins every row, as after a
                // model switch, a change of bins or seed, or a TRUNCATE of tov.scores.
                try await BenchQueries.selectionBinCountsForget(on: c)
                let rebinStarted = ContinuousClock.now
                _ = try await c.transaction { tx in try await SelectionWriter.update(in: tx, modelVersion: 1, settings: settings) }
                let rebinSeconds = (ContinuousClock.now - rebinStarted).seconds

                let reference = try await SelectionReference.compare(version: 1, settings: settings, on: c)
                let referenceSeconds = reference.referenceTime.seconds

                seconds.sort()
                let median = seconds[seconds.count / 2]
                print(String(format: "%9d   %7.0f ms   %7.0f ms   %9.0f ms   %15.0f ms   %17.2f×   %@",
                             reference.scoredRows, 1000 * median, 1000 * seconds.last!, 1000 * rebinSeconds, 1000 * referenceSeconds,
                             median / referenceSeconds, reference.matches ? "yes" : "NO"))
                guard reference.matches else { throw CLIError("tov.selected differs from the reference select() at \(reference.scoredRows) rows") }
            }
        }

        /// `count` new candidates, ready and scored under version 1 (random lengths of 1–300 tokens).
        static func addScoredRows(_ count: Int, on c: Connection) async throws {
            try await BenchQueries.scoredRowInsertMany(.init(rows: count, modelVersion: 1, lengths: .random), on: c)
        }
    }
}
