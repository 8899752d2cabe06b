import ArgumentParser
import Daemon
import EmbeddedPostgres
import Foundation
import Logging
import PQ
import Selection
import Surrogate

extension Tovd.Bench {
    /// Consecutive model-version switches of a large pool under every state of the planner's
    /// statistics, to show that no switch goes quadratic when autovacuum refreshes them (issue 24,
    /// defect 15: fresh statistics once turned the re-binning join into an n² nested loop).
    struct SwitchBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "switch",
            abstract: "Time of each model-version switch over consecutive refreshes of a large pool, statistics stale and fresh.",
            discussion: """
                Starts a private PostgreSQL cluster in --directory, fills a pool of --rows scored rows \
                (synthetic losses and lengths of 1–300 tokens; no model work) and selects from it. \
                Then --refreshes times: a new model version starts scoring (a job per row, as the \
                trainer enqueues them), every row gets a score under it in batches of --batch (each \
                batch deletes its jobs and inserts its scores in one transaction, as a worker \
                commits), and the switch runs as the selection keeper runs it: one transaction marks \
                the version complete and recomputes the selection under it (re-binning every row), \
                then the superseded version's scores are deleted and tov.jobs is vacuumed (the \
                jobs dead tuples column, counted before the switch, shows what that bounds). \
                Between refreshes the tables are \
                analyzed as autovacuum would, in turn: VACUUM ANALYZE right after the old scores are \
                deleted (so at the next switch the statistics know nothing of the new version), \
                ANALYZE after the new scores (fresh), and none. Prints each switch's time; the \
                slowest must be within 1.5× of the median, or the command fails. Build in release:
                  swift build -c release && .build/release/tovd bench switch
                """)

        @Option(help: "Pool rows.") var rows = 100_000
        @Option(help: "Consecutive refreshes (model versions after the first).") var refreshes = 30
        @Option(help: "Scores per worker transaction.") var batch = 512
        @Option(help: "Where the private cluster goes (emptied first).") var directory = "/var/tmp/tovd-bench-switch"
        @Flag(help: "Log the plan of every statement of each switch (auto_explain, with actual rows) to the cluster's postgres.log.")
        var plans = false

        func validate() throws {
            guard rows >= 1000, refreshes >= 3, batch >= 1 else {
                throw ValidationError("--rows must be at least 1000, --refreshes at least 3 and --batch at least 1")
            }
        }

        /// What the statistics of tov.scores know at a switch.
        enum Statistics: String {
            /// VACUUM ANALYZE ran after the previous switch deleted the old scores, before any score
            /// of this version: the version looks empty (the state that flipped the old plan).
            case stale
            /// ANALYZE ran after this version's scores were written.
            case fresh
            /// Nothing since the previous refresh's analyze.
            case old
        }

        func run() async throws {
            let logger = Logger(label: "tovd.bench")
            let settings = SelectionSettings()
            print("machine: \(CPUFeatures.summary)")
            print("pool \(rows) rows, \(refreshes) refreshes, policy \(settings.policy.rawValue), budget \(settings.budget), \(settings.bins) length bins")

            let (cluster, c, _) = try await Tovd.Bench.startDatabase(in: directory, epochs: 2, logger: logger)
            defer { try? cluster.stop(mode: .fast) }
            defer { c.close() }
            try await BenchQueries.randomSeedSet(0.2026, on: c)
            try await fillPool(on: c)
            try await BenchQueries.statisticsRefresh(.all, vacuum: true, on: c)
            _ = try await c.transaction { tx in try await SelectionWriter.update(in: tx, modelVersion: 1, settings: settings) }
            if plans {
                // Superuser only, as the bench's own cluster is. Plans go to the server log.
                try await BenchQueries.autoExplainLoad(on: c)
            }

            // The switch's CPU time in its server process: what a plan's growth shows, where wall
            // time also shows whatever else the (shared) machine runs.
            let backend = try await BenchQueries.backendPidGet(on: c)
            print("load average at start: \(ProcessStats.loadAverage())")
            print("")
            print("refresh   statistics   scoring s   switch s   switch CPU s   delete old s   vacuum jobs s   selection   jobs dead tuples")
            var switchSeconds: [Double] = [], switchCPU: [Double] = []
            var current = 1
            for refresh in 1...refreshes {
                let statistics: Statistics = [.stale, .fresh, .old][(refresh - 1) % 3]
                if plans { try await BenchQueries.autoExplainMinDurationSet(milliseconds: -1, on: c) }
                if statistics == .stale { try await BenchQueries.statisticsRefresh(.scoresAndJobs, vacuum: true, on: c) }
                let version = try await BenchQueries.modelVersionScoringStart(on: c)
                let scoringStarted = ContinuousClock.now
                try await scoreEveryRow(version: version, on: c)
                let scoringSeconds = (ContinuousClock.now - scoringStarted).seconds
                if statistics == .fresh { try await BenchQueries.statisticsRefresh(.scoresAndJobs, vacuum: false, on: c) }
                let dead = try await BenchQueries.jobDeadTupleCountGet(on: c)

                if plans { try await BenchQueries.autoExplainMinDurationSet(milliseconds: 0, on: c) }
                let started = ContinuousClock.now, cpuBefore = (ProcessStats.cpuSeconds(pid: Int(backend)) ?? .nan)
                let change = try await c.transaction { tx in
                    try await ModelVersionStore.modelVersionSwitch(to: version, on: tx)
                    return try await SelectionWriter.update(in: tx, modelVersion: version, settings: settings)
                }
                let seconds = (ContinuousClock.now - started).seconds, cpu = (ProcessStats.cpuSeconds(pid: Int(backend)) ?? .nan) - cpuBefore
                let deleteStarted = ContinuousClock.now
                try await c.execute(SelectionQueries.scoreObsoleteDeleteMany)
                let deleteSeconds = (ContinuousClock.now - deleteStarted).seconds
                let vacuumStarted = ContinuousClock.now
                try await c.simpleQuery(SelectionQueries.jobTableVacuum)
                let vacuumSeconds = (ContinuousClock.now - vacuumStarted).seconds
                switchSeconds.append(seconds)
                switchCPU.append(cpu)
                current = version
                print(String(format: "%7d   %-10@   %9.1f   %8.2f   %12.2f   %12.2f   %13.2f   %9d   %16d", refresh, statistics.rawValue as NSString,
                             scoringSeconds, seconds, cpu, deleteSeconds, vacuumSeconds, change.size, dead))
            }
            if plans { print("\nplans: \(cluster.logFile)") }

            guard try await SelectionReference.compare(version: current, settings: settings, on: c).matches else {
                throw CLIError("tov.selected differs from the reference select() after the last switch")
            }
            print("load average at end: \(ProcessStats.loadAverage())")
            let wall = switchSeconds.sorted(), cpu = switchCPU.sorted()
            print(String(format: "\nswitch wall time: median %.2f s, slowest %.2f s = %.2f× the median", wall[wall.count / 2], wall.last!, wall.last! / wall[wall.count / 2]))
            print(String(format: "switch CPU time:  median %.2f s, slowest %.2f s = %.2f× the median (must be ≤ 1.5×); tov.selected equals the reference select()",
                         cpu[cpu.count / 2], cpu.last!, cpu.last! / cpu[cpu.count / 2]))
            guard cpu.last! <= 1.5 * cpu[cpu.count / 2] else {
                throw CLIError("the slowest switch took \(String(format: "%.2f", cpu.last! / cpu[cpu.count / 2]))× the median CPU time: a plan grows faster than the pool")
            }
        }

        /// `rows` candidates, ready and scored under version 1, with lengths from their ids (so every
        /// version gives a row the same length, as the real tokenizer would).
        func fillPool(on c: Connection) async throws {
            try await BenchQueries.scoredRowInsertMany(.init(rows: rows, modelVersion: 1, lengths: .fromID), on: c)
            try await BenchQueries.jobDeleteAll(on: c)
        }

        /// Scores every row under `version` in worker-sized transactions, the way a worker's batch
        /// commits: take a batch of jobs in claim order, then in one transaction delete the jobs and
        /// insert their scores (new losses; φ by tov.phi).
        func scoreEveryRow(version: Int, on c: Connection) async throws {
            while true {
                let ids = try await BenchQueries.jobCandidateMany(modelVersion: version, limit: batch, on: c)
                guard !ids.isEmpty else { return }
                try await BenchQueries.scoreInsertMany(.init(ids: ids, modelVersion: version), on: c)
            }
        }
    }
}
