import ArgumentParser
import Daemon
import EmbeddedPostgres
import Foundation
import Logging
import PQ
import Selection
import Surrogate

extension Tovd.Bench {
    /// How far one PostgreSQL goes: the database side of scoring with the model taken out.
    struct CapacityBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "capacity",
            abstract: "Rows/s one PostgreSQL sustains for K simulated scorers (no model), its CPU per 1k rows, and the scoring hosts it serves.",
            discussion: """
                Starts a private cluster in --directory, and for each K in --scorers: COPYs --rows real \
                rows (new candidates, as inserts make them), then runs K simulated scorers (the worker's \
                own statements per batch of --batch-size: claim, U check, cached base losses, and the \
                completing transaction writing ready rows, base losses and scores, made-up losses instead \
                of a model) and the leader's selection update every 200 ms until the backlog is gone. \
                Reports rows/s, the Postgres processes' CPU seconds per 1k rows (/proc), and hosts served \
                = rows/s ÷ --host-rate (one scoring host's first-scoring rows/s, from `tovd bench score`).
                  swift build -c release && .build/release/tovd bench capacity
                """)

        @Option(help: "Comma-separated scorer counts K.") var scorers = "1,2,4,8"
        @Option(help: "New rows per K.") var rows = 10_000
        @Option(help: "Rows per claimed batch (the daemon's).") var batchSize = 64
        @Option(help: "Scoring epochs L (losses per row).") var epochs = 2
        @Option(help: "First-scoring rows/s of one scoring host (tovd bench score) for 'hosts served'.") var hostRate = 100.0
        @Option(help: "JSONL rows (default: .cache/bigbench-ni/all.jsonl, else the test fixture).") var file: String?
        @Option(help: "Where the private cluster goes (emptied first).") var directory = "/var/tmp/tovd-bench-capacity"

        func run() async throws {
            StandardOutput.lineBuffered()
            let logger = Logger(label: "tovd.bench")
            let ks = scorers.split(separator: ",").compactMap { Int($0) }
            guard !ks.isEmpty, ks.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--scorers takes positive counts, e.g. 1,2,4,8") }
            let (texts, source) = try ScoreBench.readRows(file: file, count: rows * ks.count)
            print("machine: \(CPUFeatures.summary)")
            print("rows: \(texts.count) from \(source); batch \(batchSize), L = \(epochs), leader update every 200 ms")

            // The simulated scorers write under the model version this makes.
            let (cluster, c, conninfo) = try await Tovd.Bench.startDatabase(in: directory, epochs: epochs, logger: logger)
            defer { try? cluster.stop(mode: .fast) }
            defer { c.close() }
            let postmaster = try Self.postmasterPID(cluster)

            print("")
            print("scorers K   rows   seconds   rows/s   Postgres CPU s / 1k rows   box CPU busy   selection updates   hosts served at \(Int(hostRate)) rows/s")
            var results: [[String: Any]] = []
            for (index, k) in ks.enumerated() {
                let slice = Array(texts[(index * rows)..<((index + 1) * rows)])
                try await Self.copy(slice, on: c)
                try await BenchQueries.statisticsRefresh(.jobsAndCandidates, vacuum: true, on: c)
                let cpuBefore = Self.cpuSeconds(of: postmaster), boxBefore = Self.boxTicks()
                let result = try await CapacityBenchmark.run(conninfo: conninfo, scorers: k, batchSize: batchSize, modelVersion: 1,
                                                             baseVersion: 1, epochs: epochs, selection: SelectionSettings())
                let cpu = Self.cpuSeconds(of: postmaster) - cpuBefore, boxAfter = Self.boxTicks()
                let busy = Double(boxAfter.busy - boxBefore.busy) / Double(max(boxAfter.total - boxBefore.total, 1))
                let perThousand = 1000 * cpu / Double(max(result.rows, 1))
                print(String(format: "%8d   %5d   %7.1f   %6.0f   %24.2f   %11.0f %%   %17d   %.1f", k, result.rows, result.seconds,
                             result.rowsPerSecond, perThousand, 100 * busy, result.selectionUpdates, result.rowsPerSecond / hostRate))
                results.append(["scorers": k, "rows_per_s": result.rowsPerSecond, "pg_cpu_s_per_1k_rows": perThousand])
            }
            let best = results.max { ($0["rows_per_s"] as! Double) < ($1["rows_per_s"] as! Double) }!
            let perThousand = best["pg_cpu_s_per_1k_rows"] as! Double
            print(String(format: "\nPostgres CPU per 1k rows at the best K: %.2f s, so one Postgres core carries about %.0f rows/s of first scorings (≈ %.0f hosts at %.0f rows/s each)",
                         perThousand, 1000 / perThousand, 1000 / perThousand / hostRate, hostRate))
            let json: [String: Any] = ["best_rows_per_s": best["rows_per_s"]!, "best_scorers": best["scorers"]!,
                                       "pg_cpu_s_per_1k_rows": perThousand, "rows_per_s_per_pg_core": 1000 / perThousand,
                                       "hosts_served_per_pg_core": 1000 / perThousand / hostRate, "host_rate": hostRate]
            print(String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]), as: UTF8.self))
        }

        static func copy(_ rows: [RowText], on c: Connection) async throws {
            for start in stride(from: 0, to: rows.count, by: 5000) {
                var chunk: [UInt8] = []
                for row in rows[start..<min(start + 5000, rows.count)] {
                    CopyText.appendRow(prompt: row.prompt, response: row.response, to: &chunk)
                }
                let data = chunk
                _ = try await c.copyIn(TransferQueries.candidatesCopyIn) { send in try await send(data) }
            }
        }

        static func postmasterPID(_ cluster: LocalCluster) throws -> Int {
            guard let text = try? String(contentsOfFile: cluster.home + "/data/postmaster.pid", encoding: .utf8),
                  let pid = text.split(separator: "\n").first.flatMap({ Int($0) }) else {
                throw CLIError("cannot read \(cluster.home)/data/postmaster.pid to measure Postgres CPU")
            }
            return pid
        }

        /// utime + stime of the postmaster, its reaped children (cutime + cstime) and its live children.
        static func cpuSeconds(of postmaster: Int) -> Double {
            var total = 0.0
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
                // From field 3 (state): ppid (4) ... utime (14), stime (15), cutime (16), cstime (17).
                guard let pid = Int(entry), let fields = ProcessStats.statFields(pid: pid),
                      fields.count > 15, let ppid = Int(fields[1]) else { continue }
                let values = fields[11...14].compactMap { Double($0) }
                guard values.count == 4 else { continue }
                if pid == postmaster { total += values.reduce(0, +) } else if ppid == postmaster { total += values[0] + values[1] }
            }
            return total / ProcessStats.ticksPerSecond
        }

        /// Busy and total jiffies of the whole box (/proc/stat), to show how loaded it was.
        static func boxTicks() -> (busy: Int, total: Int) {
            guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
                  let line = text.split(separator: "\n").first else { return (0, 0) }
            let values = line.split(separator: " ").dropFirst().compactMap { Int($0) }
            guard values.count >= 5 else { return (0, 0) }
            let idle = values[3] + values[4]
            let total = values.reduce(0, +)
            return (total - idle, total)
        }
    }
}
