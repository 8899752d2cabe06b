import ArgumentParser
import Daemon
import Foundation
import PQ

extension Tovd {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what the daemon is doing: activity with progress, pool, model, selection and every instance.",
            discussion: """
                Reads tov.status and tov.workers, so a login with only tov_reader may run it.
                  tovd status            # once, as text
                  tovd status --watch    # refreshed every 2 s with a progress bar; Ctrl-C to stop
                  tovd status --json     # one object: pool_rows, pending, waiting_for_model, model_version,
                                         # daemon_state, activity {name, done, total, unit, rate_per_second,
                                         # eta_seconds}, settings_error, theta0, zval_signal
                                         # {verdict, agreement, transfer, helped_share}, workers [...],
                                         # targets [{name, enabled, settings, zval_rows, zval_version,
                                         # model_version, next_model_version, next_model_status,
                                         # rescore_pending, selection_size, selection_version,
                                         # zval_current, zval_signal,
                                         # last_refresh_finished_at, ...}], ...
                The model, Z_val and selection lines (and keys) describe the target `default`, as tov.status \
                does; with several targets a line per target follows (tov.target_status), and "targets" has \
                every one in --json either way.
                "zval_signal" says whether the live version's Z_val agrees with itself: its verdict is \
                "good", "fair" or "low" (too few contexts, or rows of another task: SELECT * FROM \
                tov.zval_unhelped lists the Z_val rows the rest of Z_val does not help), with the numbers \
                behind it (docs/selection.md, "Is Z_val enough?").
                "daemon_state" is "running" (an instance holds the leader lease), "no leader" (instances \
                run, none holds the lease; one that can lead takes over within seconds), "no instance can \
                lead" (every running instance has --no-leader: rows are scored, nothing trains and the \
                selection does not change) or "no daemon running" (no heartbeat in 30 s). Without a leader, \
                "activity" is null (the last leader's activity stopped with it) unless a rescoring goes on, \
                which the workers carry. "leader_capable_instances" counts running instances without \
                --no-leader; it is null for a role that may not read tov.instances (tov_reader).
                """)

        @Flag(help: "Print one JSON object instead of text.") var json = false
        @Flag(help: "Refresh the text every --interval seconds until interrupted.") var watch = false
        @Option(help: "Seconds between refreshes with --watch.") var interval: Double = 2
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let connection = try await database.connect(applicationName: "tovd status")
            defer { connection.close() }
            try await checkSchema(on: connection)
            if !watch {
                let report = try await StatusReport.load(on: connection)
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys]
                    print(String(decoding: try encoder.encode(report), as: UTF8.self))
                } else {
                    print(report.humanReadable)
                }
                return
            }
            let isTerminal = isatty(STDOUT_FILENO) == 1
            while !Task.isCancelled {
                let report = try await StatusReport.load(on: connection)
                // Clear the screen on a terminal; a pipe gets one block per refresh.
                if isTerminal { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                print(Date().formatted(date: .omitted, time: .standard))
                print(report.rendered(barWidth: 30))
                if !isTerminal { print("") }
                StandardOutput.flush()
                try await Task.sleep(for: .milliseconds(Int(max(interval, 0.2) * 1000)))
            }
        }

        /// The schema version through tov.schema_version(), which read-only roles may call
        /// (tov_migrate itself is the schema owner's).
        func checkSchema(on connection: Connection) async throws {
            let version: Int
            do {
                version = try await StatusQueries.schemaVersionGet(on: connection)
            } catch let error as PQError where error.sqlState?.rawValue == "42883" || error.sqlState == .undefinedTable {
                throw CLIError("the tov schema is missing or older than version 4; run `tovd migrate up` (as the schema owner)")
            }
            if version > Migration.latestVersion {
                throw CLIError("the database schema is version \(version), newer than this tovd (\(Migration.latestVersion)); upgrade tovd")
            }
            if version < Migration.latestVersion {
                throw CLIError("the database schema is version \(version), older than this tovd (\(Migration.latestVersion)); run `tovd migrate up`")
            }
        }
    }

    struct Refresh: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the leader to train a new θ_val and rescore the pool, even if nothing changed.",
            discussion: """
                The request waits for a version already training or rescoring to finish, then makes one new \
                version; tov.selected switches to it atomically once every row is rescored. Requests made in \
                the meantime are served by that same version. A request is served only once its θ_val is \
                trained: if the leader dies first, the next leader serves it (tov.training_requests.served_at). \
                Z_val, method and val_lr_ratio changes refresh by themselves; use this after repairing data \
                by hand. Without --target it refreshes every enabled target (tov.training_requests.target_id \
                NULL), one after the other.
                  tovd refresh                  # every target
                  tovd refresh --target drop    # only the target drop
                """)
        @Option(help: ArgumentHelp("Refresh only this target (tovd target list).", valueName: "name")) var target: String?
        @OptionGroup var database: DatabaseOptions
        func run() async throws {
            guard let target else { return try await requestTraining(.refresh, database: database) }
            let connection = try await database.connect(applicationName: "tovd refresh")
            defer { connection.close() }
            let id = try await TargetStore.targetRefreshRequestInsert(targetID: try await requireTarget(target, on: connection), on: connection)
            print("refresh of target \(target) requested (request \(id)); it is served once its version is trained, and requests "
                  + "made meanwhile join it; follow it with `tovd status --watch`")
        }
    }

    struct Rebase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the leader to draw a new U and train a new base model (θ0, θ_bas, θ_val), then rescore.",
            discussion: """
                Changes to surrogate, u_size, epochs, lr, pretrain_steps, seed or theta0, and pool growth by \
                rebase_growth, rebase by themselves. The old selection stays readable until the rebased one \
                switches in. A request is served once the new base model is trained (a leader that dies first \
                leaves it pending for the next one); a rebase that cannot start (u_size above the validated \
                rows, a surrogate too large for this host, a θ0 that is missing or does not fit) waits, and \
                says why in tovd status, without holding up refreshes of the current base model.
                """)
        @OptionGroup var database: DatabaseOptions
        func run() async throws { try await requestTraining(.rebase, database: database) }
    }
}

private func requestTraining(_ kind: TrainingStore.RequestKind, database: DatabaseOptions) async throws {
    let connection = try await database.connect(applicationName: "tovd \(kind.rawValue)")
    defer { connection.close() }
    let id = try await TrainingStore.requestInsert(kind, on: connection)
    print("\(kind.rawValue) requested (request \(id)); it is served once its work completes, and requests made "
          + "meanwhile join it; follow it with `tovd status --watch`")
}
