import ArgumentParser
import Daemon
import EmbeddedPostgres
import Evaluation
import Foundation
import JSONL
import Logging
import PQ
import Selection
import Surrogate

extension Tovd.Bench {
    /// What several targets on one pool cost per new row, measured on a real `tovd run`: the same pool
    /// with K = 1, 2, 4 targets, against K separate schemas.
    struct TargetsBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "targets",
            abstract: "Rows/s of new rows scored for K = 1, 2, 4 targets on one pool, against K separate schemas.",
            discussion: """
                Starts a private PostgreSQL cluster in --directory and `tovd run` as a child process on \
                real rows from the BIG-bench cache (tovd data fetch bigbench-ni). The pool is --u-size \
                rows; each target's Z_val is --zval-rows rows of its own subtask (kept out of the pool). \
                For K = 1, 2, 4 targets in turn (targets are added, and each new one is trained and \
                rescored before the phase starts), --rows new rows are inserted in one COPY and timed \
                from their insert to their last score under every target's model version.

                With Method A a new row costs one base pass and one pass per target (L epochs each): \
                (1 + K)·L forward passes. K separate schemas, each with its own base model, cost 2·L per \
                row each, and on one host they share the same CPU, so their rate is the K = 1 rate \
                divided by K (measured here, not assumed: the K = 1 phase is one schema). The table \
                prints both and their ratio beside 2K/(1 + K), the speed-up the pass count predicts.
                Build in release: swift build -c release && .build/release/tovd bench targets
                """)

        @Option(help: "New rows inserted and timed in each phase.") var rows = 1_000
        @Option(help: "|U| and the starting pool (all of it is U).") var uSize = 1024
        @Option(help: "Z_val rows per target.") var zvalRows = 100
        @Option(help: "Surrogate: small (2 × 128, context 128, vocab 2048) or default (4 × 256, context 256, vocab 4096).")
        var surrogate = "small"
        @Option(help: "θ0 pretraining steps.") var pretrainSteps = 100
        @Option(help: "Directory of the BIG-bench cache.") var data = ".cache/bigbench-ni"
        @Option(help: "Rows per claimed batch.") var batchSize = 64
        @Option(help: "Where the private cluster and the daemon's log go (emptied first).") var directory = "/var/tmp/tovd-bench-targets"

        /// Each target's Z_val subtask, from four different source datasets.
        static let subtasks = [
            "subtask061_ropes_answer_generation", "subtask028_drop_answer_generation",
            "subtask024_cosmosqa_answer_generation", "subtask002_quoref_answer_generation",
        ]

        func validate() throws {
            guard ["small", "default"].contains(surrogate) else { throw ValidationError("--surrogate must be small or default") }
            guard rows >= 100, uSize >= 16, zvalRows >= 1 else { throw ValidationError("--rows ≥ 100, --u-size ≥ 16 and --zval-rows ≥ 1") }
        }

        func run() async throws {
            let logger = Logger(label: "tovd.bench")
            let (pool, fresh, zvals) = try loadData()
            print("machine: \(CPUFeatures.summary)")
            print("pool \(pool.count) rows (all U), \(rows) new rows per phase, Z_val \(zvalRows) rows per target, surrogate \(surrogate)")

            try? FileManager.default.removeItem(atPath: directory)
            let cluster = LocalCluster(directory: directory)
            let conninfo = try await Task.detached { try cluster.start() }.value
            defer { try? cluster.stop(mode: .fast) }
            let c = try await Connection.connect(conninfo, applicationName: "tovd bench")
            defer { c.close() }
            try await Migrator(logger: logger).up(on: c)
            // No rebase by growth: every phase scores on the one base model.
            try await BenchQueries.settingSetMany([
                ("surrogate", DaemonBench.surrogateSetting(surrogate)), ("u_size", "\(uSize)"), ("pretrain_steps", "\(pretrainSteps)"),
                ("zval_debounce_seconds", "0"), ("budget", #"{"fraction": 0.05}"#), ("rebase_growth", "0"),
            ], on: c)
            try await DaemonBench.copy(pool, with: TransferQueries.candidatesCopyIn, on: c)

            let daemon = try DaemonChild(conninfo: conninfo, directory: directory, batchSize: batchSize)
            defer { daemon.stop() }

            var results: [(k: Int, rate: Double, passesPerRow: Int, baseLossRows: Int)] = []
            var phase = 0
            for k in [1, 2, 4] {
                // Add targets up to k (the first is `default`, whose Z_val goes in as a user's would).
                var existing = results.last?.k ?? 0
                while existing < k {
                    let name = existing == 0 ? "default" : "t\(existing + 1)"
                    let z = zvals[existing]
                    if existing == 0 {
                        try await BenchQueries.validationInsertMany(target: name, prompts: z.map(\.prompt), responses: z.map(\.response), on: c)
                    } else {
                        try await BenchQueries.targetWithZvalInsert(name: name, prompts: z.map(\.prompt), responses: z.map(\.response), on: c)
                    }
                    existing += 1
                }
                try await settle(k: k, daemon: daemon, on: c)
                let afterID = try await BenchQueries.candidateMaxIDGet(on: c)
                let batch = Array(fresh[(phase * rows)..<((phase + 1) * rows)])
                phase += 1
                try await DaemonBench.copy(batch, with: TransferQueries.candidatesCopyIn, on: c)
                let bar = ProgressBar("K = \(k): \(rows) new rows", total: rows, unit: "rows")
                var scored = try await BenchQueries.newRowsScoredGet(afterID: afterID, on: c)
                while scored.rows < rows {
                    guard daemon.isRunning else { throw CLIError("tovd run exited; see \(daemon.logPath)") }
                    bar.update(scored.rows)
                    try await Task.sleep(for: .milliseconds(250))
                    scored = try await BenchQueries.newRowsScoredGet(afterID: afterID, on: c)
                }
                bar.finish(rows)
                results.append((k, Double(rows) / scored.seconds, (1 + k) * 2, scored.baseLosses))
            }

            let single = results[0].rate
            print("")
            print("K  rows/s  row×target scores/s  base-loss rows  K schemas rows/s  one pool ÷ K schemas  2K/(1+K) predicts")
            for r in results {
                let separate = single / Double(r.k)
                print(String(format: "%d  %6.1f  %19.1f  %14d  %16.1f  %19.2f×  %16.2f×",
                             r.k, r.rate, r.rate * Double(r.k), r.baseLossRows, separate, r.rate / separate,
                             2 * Double(r.k) / Double(1 + r.k)))
            }
            print("base-loss rows: one per new row means the base pass ran once for all targets (\(rows) expected per phase).")
        }

        /// Waits until all `k` targets have a complete version on their Z_val and the queue is empty.
        func settle(k: Int, daemon: DaemonChild, on c: Connection) async throws {
            let bar = ProgressBar("training and rescoring for \(k) target\(k == 1 ? "" : "s")", total: k, unit: "targets")
            while true {
                let s = try await BenchQueries.targetsSettledGet(on: c)
                bar.update(s.settled, note: s.jobs > 0 ? "(\(s.jobs) jobs queued)" : "")
                if s.targets == k, s.settled == k, s.jobs == 0 { break }
                guard daemon.isRunning else { throw CLIError("tovd run exited; see \(daemon.logPath)") }
                try await Task.sleep(for: .milliseconds(500))
            }
            bar.finish(k)
        }

        /// Pool (|U| rows), the new rows of the three phases, and one Z_val per target.
        func loadData() throws -> (pool: [JSONLExample], fresh: [JSONLExample], zvals: [[JSONLExample]]) {
            let all = URL(fileURLWithPath: data).appendingPathComponent("all.jsonl")
            guard FileManager.default.fileExists(atPath: all.path) else {
                throw CLIError("\(all.path) is missing: run `tovd data fetch bigbench-ni` first")
            }
            var candidates: [JSONLExample] = []
            var zvals = [[JSONLExample]](repeating: [], count: Self.subtasks.count)
            for case .success(let example) in try JSONLReader(url: all) {
                if let i = Self.subtasks.firstIndex(of: example.source ?? "") { zvals[i].append(example) } else { candidates.append(example) }
            }
            var rng = SplitMix64(seed: 11)
            candidates.shuffle(using: &rng)
            let need = uSize + 3 * rows
            guard candidates.count >= need else { throw CLIError("not enough rows in \(all.path) for --rows \(rows) and --u-size \(uSize)") }
            for i in zvals.indices {
                zvals[i].shuffle(using: &rng)
                guard zvals[i].count >= zvalRows else { throw CLIError("\(Self.subtasks[i]) has \(zvals[i].count) rows, fewer than --zval-rows \(zvalRows)") }
                zvals[i] = Array(zvals[i].prefix(zvalRows))
            }
            return (Array(candidates[0..<uSize]), Array(candidates[uSize..<need]), zvals)
        }
    }
}
