import ArgumentParser
import Daemon
import EmbeddedPostgres
import Evaluation
import JSONL
import Foundation
import Logging
import PQ
import Selection
import Surrogate

extension Tovd.Bench {
    /// The daemon as users run it: a real `tovd run` process on a private cluster and real text,
    /// measured from the database's own timestamps.
    struct DaemonBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "daemon",
            abstract: "End-to-end daemon benchmark: backlog burn-down vs the pure engine, insert → selection latency, refresh time and RSS.",
            discussion: """
                Starts a private PostgreSQL cluster in --directory, imports --rows real rows from the \
                BIG-bench cache (tovd data fetch bigbench-ni) plus |U| more, Z_val from one subtask, and \
                runs `tovd run` as a child process. Then, in one run:
                  1. bootstrap and burn-down: θ0 + base trajectory, θ_val, and the time to score the \
                whole backlog under the first model version (rows/s, tokens/s): together the time to the \
                first complete selection; when the Z_val signal came after the switch; and, once the \
                leader is idle, the pure engine's rate on the same rows and checkpoints in this process; \
                the ratio is the database path's overhead (goal ≤ 20 %);
                  2. latency: single-row inserts at --load × the measured rate for --latency-seconds; \
                insert → scored and insert → reflected in tov.selected (the first selection update \
                computed after the row's score, whether or not the row entered), p50 / p99 / max (goal p99 < 2 s);
                  3. refresh: one Z_val insert; θ_val training time, rescoring time, and the daemon's \
                peak RSS during the refresh (/proc VmHWM, reset before the refresh).
                Build in release: swift build -c release && .build/release/tovd bench daemon --rows 10000
                """)

        @Option(help: "Pool rows to score (U rows come on top).") var rows = 10_000
        @Option(help: "|U|, the base subset.") var uSize = 1024
        @Option(help: "Surrogate: small (2 × 128, context 128, vocab 2048: the evaluation's) or default (4 × 256, context 256, vocab 4096: the daemon's default).")
        var surrogate = "small"
        @Option(help: "θ0 pretraining steps.") var pretrainSteps = 200
        @Option(help: "Directory of the BIG-bench cache.") var data = ".cache/bigbench-ni"
        @Option(help: "Subtask Z_val is drawn from (excluded from the pool).") var zvalSource = "subtask061_ropes_answer_generation"
        @Option(help: "Rows per claimed batch.") var batchSize = 64
        @Option(help: "Seconds of the latency phase.") var latencySeconds = 30.0
        @Option(help: "Insert rate of the latency phase as a fraction of the measured burn-down rate.") var load = 0.5
        @Option(help: "Where the private cluster and the daemon's log go (emptied first).") var directory = "/var/tmp/tovd-bench"
        @Flag(help: "Stop after the latency phase (skips the Z_val refresh and rescoring of the whole pool).") var noRefresh = false
        @Flag(help: "Leave the cluster running afterwards (conninfo is printed).") var keep = false
        @Option(help: "auto, fp32 or bf16: the daemon's scoring precision (`tovd run --scoring-precision`), and the pure engine's.")
        var scoringPrecision = "auto"
        @Option(help: "fp32 or bf16: the daemon's training precision (`tovd run --training-precision`).") var trainingPrecision = "fp32"

        func validate() throws {
            guard ["small", "default"].contains(surrogate) else { throw ValidationError("--surrogate must be small or default") }
            guard PrecisionChoice(rawValue: scoringPrecision) != nil else { throw ValidationError("--scoring-precision must be auto, fp32 or bf16") }
            guard TrainingPrecision(rawValue: trainingPrecision) != nil else { throw ValidationError("--training-precision must be fp32 or bf16") }
            guard rows >= 100, uSize >= 16 else { throw ValidationError("--rows must be at least 100 and --u-size at least 16") }
            guard load > 0, load <= 1 else { throw ValidationError("--load must be in (0, 1]") }
        }

        func run() async throws {
            let logger = Logger(label: "tovd.bench")
            let (pool, extra, zval) = try loadData()
            print("machine: \(CPUFeatures.summary)")
            print("pool \(pool.count) rows (\(rows) scored + \(uSize) U), Z_val \(zval.count - 1) rows of \(zvalSource), surrogate \(surrogate)")
            // The daemon resolves --scoring-precision the same way; the pure engine must score as it does.
            let scoring = PrecisionChoice(rawValue: scoringPrecision)!.resolve(bf16Available: ScoringPrecision.isAvailable(.bf16)).precision
            print("scoring in \(scoring.rawValue) (--scoring-precision \(scoringPrecision)), training in \(trainingPrecision)")

            try? FileManager.default.removeItem(atPath: directory)
            let cluster = LocalCluster(directory: directory)
            let conninfo = try await Task.detached { try cluster.start() }.value
            defer {
                if keep { print("cluster left running: \(conninfo)") } else {
                    try? cluster.stop(mode: .fast)
                }
            }
            let c = try await Connection.connect(conninfo, applicationName: "tovd bench")
            defer { c.close() }
            try await Migrator(logger: logger).up(on: c)
            try await BenchQueries.settingSetMany(settings(), on: c)

            var started = ContinuousClock.now
            try await Self.copy(pool, with: TransferQueries.candidatesCopyIn, on: c)
            let importSeconds = (ContinuousClock.now - started).seconds
            try await Self.copy(Array(zval.dropLast()), with: TransferQueries.validationCopyIn, on: c)
            print(String(format: "import: %d rows in %.1f s (%.0f rows/s, COPY)", pool.count, importSeconds, Double(pool.count) / importSeconds))

            let daemon = try DaemonChild(conninfo: conninfo, directory: directory, batchSize: batchSize,
                                         precisions: ["--scoring-precision", scoringPrecision, "--training-precision", trainingPrecision])
            defer { daemon.stop() }

            // 1. Bootstrap and burn-down of the whole backlog under version 1.
            started = ContinuousClock.now
            let bar = ProgressBar("bootstrap + burn-down", total: rows, unit: "rows")
            while true {
                let status = try await StatusReport.load(on: c)
                // Until version 1 is complete its scores count as rescoring progress, not as `scored`.
                if status.modelVersion == nil, status.nextModelStatus == "scoring" {
                    bar.update(max(0, rows - Int(status.rescorePending)), note: "(scoring under version 1)")
                } else {
                    bar.update(Int(status.scored), note: status.modelVersion == nil ? "(training θ0, θ_bas, θ_val)" : "")
                }
                if status.modelVersion != nil, status.pending == 0, status.rescorePending == 0 { break }
                guard daemon.isRunning else { throw CLIError("tovd run exited; see \(daemon.logPath)") }
                try await Task.sleep(for: .milliseconds(500))
            }
            bar.finish(rows)
            let bootstrapPeakKB = daemon.peakRSSKilobytes
            try await Self.waitForIdleLeader(daemon, on: c)
            let burn = try await BenchQueries.bootstrapTimingsGet(on: c)
            let baseTrainSeconds = burn.baseTrainSeconds, valTrainSeconds = burn.valTrainSeconds
            let burnSeconds = burn.burnSeconds, burnRows = burn.burnRows, burnTokens = burn.burnTokens
            let endToEnd = Double(burnRows) / burnSeconds

            // The pure engine on the same rows and checkpoints, with the daemon idle.
            let engine = try await EngineBenchmark.run(on: c, rows: min(burnRows, 3000), batchSize: batchSize, includeBase: true,
                                                       precision: scoring, logger: logger)

            // 2. Latency at a fraction of the measured capacity.
            let latency = try await measureLatency(conninfo: conninfo, rate: load * endToEnd, rows: extra)

            print("")
            print("stage                          figure")
            print(String(format: "θ0 + base trajectory (U=%d)    %.1f s", uSize, baseTrainSeconds))
            print(String(format: "θ_val (first version)          %.1f s", valTrainSeconds))
            print(String(format: "burn-down, %6d-row backlog   %.1f s: %.1f rows/s, %.0f response tokens/s (θ_bas + θ_val, L=2)",
                         burnRows, burnSeconds, endToEnd, Double(burnTokens) / burnSeconds))
            print(String(format: "first complete selection       %.1f s after the base model started", burn.totalSeconds))
            print("Z_val signal                   " + (burn.signalSeconds.map { String(format: "%.1f s after the switch", $0) } ?? "not measured"))
            print(String(format: "pure engine, same rows         %.1f rows/s, %.0f response tokens/s", engine.rowsPerSecond, engine.tokensPerSecond))
            print(String(format: "end-to-end / engine            %.2f× (database path overhead %.1f %%; goal ≤ 20 %%)",
                         endToEnd / engine.rowsPerSecond, 100 * (1 - endToEnd / engine.rowsPerSecond)))
            print(String(format: "projected 100k-row burn-down   %.0f s", 100_000 / endToEnd))
            print(String(format: "latency at %.0f %% load (%.1f rows/s, %d rows): insert → scored p50 %.2f s, p99 %.2f s; insert → in tov.selected p50 %.2f s, p99 %.2f s, max %.2f s (goal p99 < 2 s)",
                         100 * load, load * endToEnd, latency.scored.count,
                         Stats.quantile(latency.scored, 0.5), Stats.quantile(latency.scored, 0.99),
                         Stats.quantile(latency.visible, 0.5), Stats.quantile(latency.visible, 0.99), latency.visible.max() ?? .nan))
            print(String(format: "peak RSS of tovd run through bootstrap + burn-down: %.0f MB", Double(bootstrapPeakKB) / 1024))
            if noRefresh { return }

            // 3. Refresh after a Z_val change, with the peak RSS of just that phase.
            daemon.resetPeakRSS()
            try await Self.copy([zval.last!], with: TransferQueries.validationCopyIn, on: c)
            let refreshBar = ProgressBar("refresh + rescoring", total: burnRows, unit: "rows")
            while true {
                let status = try await StatusReport.load(on: c)
                let done = status.nextModelVersion == nil && (status.modelVersion ?? 0) > 1
                refreshBar.update(max(0, burnRows - Int(status.rescorePending)), note: status.nextModelStatus.map { "(\($0))" } ?? "")
                if done { break }
                guard daemon.isRunning else { throw CLIError("tovd run exited; see \(daemon.logPath)") }
                try await Task.sleep(for: .milliseconds(500))
            }
            refreshBar.finish(burnRows)
            let refreshPeakKB = daemon.peakRSSKilobytes
            try await Self.waitForIdleLeader(daemon, on: c)
            let refresh = try await BenchQueries.refreshTimingsGet(on: c)
            let refreshTrain = refresh.trainSeconds, rescoreSeconds = refresh.rescoreSeconds, rescored = refresh.rescored
            let poolRows = try await BenchQueries.candidateCount(on: c)
            let rescoreEngine = try await EngineBenchmark.run(on: c, rows: min(rescored, 3000), batchSize: batchSize, includeBase: false,
                                                              precision: scoring, logger: logger)

            print(String(format: "refresh: θ_val %.1f s, rescoring %d rows %.1f s (%.1f rows/s; engine θ_val-only %.1f rows/s, %.2f×)",
                         refreshTrain, rescored, rescoreSeconds, Double(rescored) / rescoreSeconds, rescoreEngine.rowsPerSecond,
                         Double(rescored) / rescoreSeconds / rescoreEngine.rowsPerSecond))
            print(String(format: "peak RSS of tovd run during the refresh + rescoring: %.0f MB (pool %d rows)",
                         Double(refreshPeakKB) / 1024, poolRows))
        }

        /// Waits for what the leader does after a switch (it measures the Z_val signal then), so the
        /// pure engine is timed on a box the daemon leaves idle. A leader that is still busy after five
        /// minutes is reported, and the bench goes on.
        static func waitForIdleLeader(_ daemon: DaemonChild, on c: Connection) async throws {
            let deadline = ContinuousClock.now + .seconds(300)
            while let activity = try await StatusReport.load(on: c).activity?.name, activity != "idle" {
                guard daemon.isRunning else { throw CLIError("tovd run exited; see \(daemon.logPath)") }
                guard ContinuousClock.now < deadline else {
                    print("warning: the leader is still \(activity) after 5 minutes; the engine is timed beside it (see \(daemon.logPath))")
                    return
                }
                try await Task.sleep(for: .milliseconds(500))
            }
        }

        /// The daemon's settings for this run, as (key, JSON value).
        func settings() -> [(key: String, value: String)] {
            [("surrogate", Self.surrogateSetting(surrogate)), ("u_size", "\(uSize)"), ("pretrain_steps", "\(pretrainSteps)"),
                    ("zval_debounce_seconds", "0"), ("budget", #"{"fraction": 0.05}"#)]
        }

        /// The `surrogate` setting for --surrogate small (the evaluation's 2 × 128) or default (the
        /// daemon's 4 × 256), shared by the benches that run `tovd run`.
        static func surrogateSetting(_ name: String) -> String {
            name == "small"
                ? #"{"layers": 2, "width": 128, "heads": 4, "context": 128, "vocab": 2048}"#
                : #"{"layers": 4, "width": 256, "heads": 4, "context": 256, "vocab": 4096}"#
        }

        /// Pool (rows + |U|), extra rows for the latency phase, and Z_val (+ 1 row that triggers the refresh).
        func loadData() throws -> (pool: [JSONLExample], extra: [JSONLExample], zval: [JSONLExample]) {
            let all = URL(fileURLWithPath: data).appendingPathComponent("all.jsonl")
            guard FileManager.default.fileExists(atPath: all.path) else {
                throw CLIError("\(all.path) is missing: run `tovd data fetch bigbench-ni` first")
            }
            var candidates: [JSONLExample] = []
            var zval: [JSONLExample] = []
            for case .success(let example) in try JSONLReader(url: all) {
                if example.source == zvalSource { zval.append(example) } else { candidates.append(example) }
            }
            var rng = SplitMix64(seed: 7)
            candidates.shuffle(using: &rng)
            zval.shuffle(using: &rng)
            let need = rows + uSize
            let extraCount = 20_000
            guard candidates.count >= need + extraCount, zval.count >= 201 else {
                throw CLIError("not enough rows in \(all.path) for --rows \(rows) (have \(candidates.count))")
            }
            return (Array(candidates[0..<need]), Array(candidates[need..<(need + extraCount)]), Array(zval.prefix(201)))
        }

        /// Rows into the pool or Z_val with `tovd import`'s COPY statement `statement` (no source, no meta).
        static func copy(_ examples: [JSONLExample], with statement: String, on c: Connection) async throws {
            for start in stride(from: 0, to: examples.count, by: 5000) {
                var chunk: [UInt8] = []
                for example in examples[start..<min(start + 5000, examples.count)] {
                    CopyText.appendRow(prompt: example.prompt.utf8, response: example.response.utf8, to: &chunk)
                }
                let data = chunk
                _ = try await c.copyIn(statement) { send in try await send(data) }
            }
        }

        /// Inserts one row at a time at `rate` rows/s for --latency-seconds while another connection
        /// watches the selection version; returns per-row insert → scored and insert → selected seconds.
        func measureLatency(conninfo: String, rate: Double, rows: [JSONLExample]) async throws -> (scored: [Double], visible: [Double]) {
            let writer = try await Connection.connect(conninfo, applicationName: "tovd bench writer")
            let watcher = try await Connection.connect(conninfo, applicationName: "tovd bench watcher")
            defer { writer.close(); watcher.close() }
            let clock = ContinuousClock()
            let origin = clock.now
            func now() -> Double { (clock.now - origin).seconds }
            // Selection updates as first seen: (computed_at on the database clock, seen at). Every
            // update sets computed_at; the version goes up only when the selected set changed, so a
            // row that did not enter is reflected by the first update after its score, not the
            // first version change.
            let watching = Task { () -> [(computedAt: Double, seenAt: Double)] in
                var seen: [(Double, Double)] = []
                var last = -Double.infinity
                while !Task.isCancelled {
                    if let at = try? await BenchQueries.selectionComputedAtGet(on: watcher), at != last {
                        last = at
                        seen.append((at, now()))
                    }
                    try? await Task.sleep(for: .milliseconds(20))
                }
                return seen
            }
            let interval = 1 / rate
            let total = Int(latencySeconds * rate)
            let bar = ProgressBar("latency at \(Int(100 * load)) % load", total: total, unit: "rows")
            var inserted: [(id: Int64, at: Double)] = []
            for (i, example) in rows.prefix(total).enumerated() {
                let due = Double(i) * interval
                if due > now() { try await Task.sleep(for: .seconds(due - now())) }
                let id = try await BenchQueries.candidateInsert(prompt: example.prompt, response: example.response, on: writer)
                inserted.append((id, now()))
                bar.update(i + 1)
            }
            bar.finish(inserted.count)
            // Wait until every row is scored and one more selection has been computed.
            let ids = inserted.map(\.id)
            var scoredAt: [Int64: Double] = [:]
            let deadline = now() + 120
            while now() < deadline {
                scoredAt = try await BenchQueries.scoredAtMany(ids: ids, on: writer)
                if scoredAt.count == ids.count { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await Task.sleep(for: .seconds(3))
            watching.cancel()
            let versions = await watching.value
            // The database and this process share the host clock: map scored_at onto our timeline.
            let wallOrigin = Date().timeIntervalSince1970 - now()
            var scored: [Double] = []
            var visible: [Double] = []
            for (id, insertedAt) in inserted {
                guard let at = scoredAt[id] else { continue }
                scored.append(at - wallOrigin - insertedAt)
                if let shown = versions.first(where: { $0.computedAt >= at }) { visible.append(shown.seenAt - insertedAt) }
            }
            return (scored.sorted(), visible.sorted())
        }
    }
}

/// `tovd run` as a child process of the benchmark, with its log in a file and its RSS readable.
final class DaemonChild {
    let process = Process()
    let logPath: String

    init(conninfo: String, directory: String, batchSize: Int, precisions: [String] = []) throws {
        logPath = directory + "/tovd.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)!
        process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).standardizedFileURL
        if let path = Bundle.main.executablePath { process.executableURL = URL(fileURLWithPath: path) }
        process.arguments = ["run", "--database-url", conninfo, "--metrics-port=-1", "--batch-size", "\(batchSize)",
                             "--poll-interval", "0.5", "--instance", "bench"] + precisions
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "NOTIFY_SOCKET")
        process.environment = environment
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    var isRunning: Bool { process.isRunning }

    /// VmHWM: the peak resident set since start or the last ``resetPeakRSS()`` (0 where unreadable).
    var peakRSSKilobytes: Int { ProcessStats.peakResidentKilobytes(pid: process.processIdentifier) ?? 0 }

    func resetPeakRSS() { ProcessStats.resetPeakResident(pid: process.processIdentifier) }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { usleep(50_000) }
    }
}
