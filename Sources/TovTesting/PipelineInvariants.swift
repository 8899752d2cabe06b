import Daemon
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import PQ
import Selection

/// Settings that make the whole pipeline (bootstrap, θ_val, scoring, selection) run in seconds: a
/// one-layer, 16-wide surrogate and a tiny U. Tests that need a bigger refresh override single keys.
public enum TinyPipeline {
    public static func settingsSQL(uSize: Int = 16, budgetRows: Int = 10, bins: Int = 2, debounceSeconds: Double = 0) -> String {
        """
        UPDATE tov.settings SET value = '{"layers": 1, "width": 16, "heads": 2, "context": 32, "vocab": 300}' WHERE key = 'surrogate';
        UPDATE tov.settings SET value = '\(uSize)' WHERE key = 'u_size';
        UPDATE tov.settings SET value = '2' WHERE key = 'epochs';
        UPDATE tov.settings SET value = '5' WHERE key = 'pretrain_steps';
        UPDATE tov.settings SET value = '0.01' WHERE key = 'lr';
        UPDATE tov.settings SET value = '\(debounceSeconds)' WHERE key = 'zval_debounce_seconds';
        UPDATE tov.settings SET value = '{"rows": \(budgetRows)}' WHERE key = 'budget';
        UPDATE tov.settings SET value = '\(bins)' WHERE key = 'bins';
        """
    }
}

/// What every fault scenario must end with, measured on the database once the daemons are idle:
/// every committed candidate is ready or rejected exactly once, and for every target with Z_val
/// rows, every ready row outside U has exactly one score under the target's complete model version,
/// trained on the target's current Z_val, and its selection equals the from-scratch Swift `select()`
/// on the stored scores under the target's settings.
public struct PipelineFigures: Sendable, CustomStringConvertible {
    public var candidates = 0
    public var ready = 0
    public var rejected = 0
    /// Committed candidates neither ready nor rejected.
    public var lost = 0
    /// Candidates both ready and rejected, or with more than one score row per version.
    public var doubled = 0
    public var queued = 0
    public var uRows = 0
    /// Targets with Z_val rows (each must end with a complete version and a selection).
    public var targets = 0
    /// Ready rows outside U with a score under their target's complete version, summed over targets.
    public var scored = 0
    /// Ready rows outside U without a score under their target's complete version, summed over targets.
    public var unscored = 0
    /// Score rows of U members (must be 0: U rows are never scored).
    public var scoredInU = 0
    /// The target `default`'s complete version (the first target's when it has none).
    public var completeVersion: Int?
    /// Targets with Z_val rows but no complete version.
    public var targetsWithoutVersion = 0
    /// Every complete version was trained on its target's current Z_val and no version is in progress.
    public var versionIsCurrent = false
    /// Every target's selection equals the reference.
    public var selectionMatchesReference = false

    public init() {}

    /// True when nothing was lost, doubled or left unscored, and every selection is the reference one.
    public var isConsistent: Bool {
        lost == 0 && doubled == 0 && queued == 0 && unscored == 0 && scoredInU == 0 && completeVersion != nil && targetsWithoutVersion == 0
            && versionIsCurrent && selectionMatchesReference
    }

    public var description: String {
        "candidates \(candidates), ready \(ready), rejected \(rejected), lost \(lost), doubled \(doubled), queued \(queued), "
            + "U \(uRows), scored \(scored), unscored \(unscored), scored in U \(scoredInU), "
            + (targets > 1 ? "targets \(targets)\(targetsWithoutVersion > 0 ? " (\(targetsWithoutVersion) without a version)" : ""), " : "")
            + "complete version \(completeVersion.map(String.init) ?? "none")\(versionIsCurrent ? "" : " (stale)"), selection = reference: \(selectionMatchesReference)"
    }

    public static func measure(on c: Connection) async throws -> PipelineFigures {
        var f = PipelineFigures()
        let counts = try await c.query("""
            SELECT (SELECT count(*) FROM tov.candidates) AS candidates,
                   (SELECT count(*) FROM tov.ready) AS ready,
                   (SELECT count(*) FROM tov.rejects) AS rejected,
                   (SELECT count(*) FROM tov.candidates x WHERE NOT EXISTS (SELECT 1 FROM tov.ready r WHERE r.candidate_id = x.id)
                                                         AND NOT EXISTS (SELECT 1 FROM tov.rejects j WHERE j.candidate_id = x.id)) AS lost,
                   (SELECT count(*) FROM tov.ready r JOIN tov.rejects j USING (candidate_id))
                     + (SELECT count(*) FROM (SELECT 1 FROM tov.scores GROUP BY candidate_id, model_version HAVING count(*) > 1) d) AS doubled,
                   (SELECT count(*) FROM tov.jobs) AS queued
            """).first!
        f.candidates = Int(try counts.get(Int64.self, "candidates"))
        f.ready = Int(try counts.get(Int64.self, "ready"))
        f.rejected = Int(try counts.get(Int64.self, "rejected"))
        f.lost = Int(try counts.get(Int64.self, "lost"))
        f.doubled = Int(try counts.get(Int64.self, "doubled"))
        f.queued = Int(try counts.get(Int64.self, "queued"))
        // One row per target with Z_val rows: its complete version (NULL when it has none).
        let targets = try await c.query("""
            SELECT t.target_id, t.name, m.model_version, m.base_version,
                   m.zval_version = z.version AS current
            FROM tov.targets t JOIN tov.target_zval z USING (target_id)
            LEFT JOIN tov.model_versions m ON m.target_id = t.target_id AND m.status = 'complete'
            WHERE EXISTS (SELECT 1 FROM tov.validation v WHERE v.target = t.name)
            ORDER BY t.name <> 'default', t.target_id
            """)
        f.targets = targets.count
        let inProgress = try await TovTestDatabase.count("tov.model_versions", on: c, where: "status IN ('training', 'scoring')")
        let settings = try await SettingsCache.load(on: c)
        var current = inProgress == 0
        var matches = true
        for target in targets {
            guard let version = try target.getOptional(Int32.self, "model_version").map(Int.init) else {
                f.targetsWithoutVersion += 1
                continue
            }
            let base = Int(try target.get(Int32.self, "base_version"))
            if f.completeVersion == nil { f.completeVersion = version }
            let isCurrent = try target.getOptional(Bool.self, "current") ?? false
            current = current && isCurrent
            let scoring = try await c.query("""
                SELECT (SELECT count(*) FROM tov.base_subset WHERE base_version = $2) AS u_rows,
                       (SELECT count(*) FROM tov.scores s WHERE s.model_version = $1) AS scored,
                       (SELECT count(*) FROM tov.ready r
                        WHERE NOT EXISTS (SELECT 1 FROM tov.base_subset b WHERE b.base_version = $2 AND b.candidate_id = r.candidate_id)
                          AND NOT EXISTS (SELECT 1 FROM tov.scores s WHERE s.model_version = $1 AND s.candidate_id = r.candidate_id)) AS unscored,
                       (SELECT count(*) FROM tov.scores s JOIN tov.base_subset b USING (candidate_id)
                        WHERE b.base_version = $2 AND s.model_version = $1) AS scored_in_u
                """, [version, base]).first!
            f.uRows = Int(try scoring.get(Int64.self, "u_rows"))
            f.scored += Int(try scoring.get(Int64.self, "scored"))
            f.unscored += Int(try scoring.get(Int64.self, "unscored"))
            f.scoredInU += Int(try scoring.get(Int64.self, "scored_in_u"))
            let name = try target.get(String.self, "name")
            let selection = settings.target(named: name)?.settings.selection ?? settings.selection
            let compared = try await SelectionReference.compare(version: version, settings: selection, target: name, on: c)
            matches = matches && compared.matches
        }
        f.versionIsCurrent = current
        f.selectionMatchesReference = matches
        return f
    }

    /// The target `default`'s selection as (id, reason, bin) equals `select()` over its complete
    /// version's scores (the check `tovd bench selection` and `tovd bench switch` run too).
    public static func selectionMatchesReference(on c: Connection) async throws -> Bool {
        let settings = try await SettingsCache.load(on: c)
        let selection = settings.target(named: Settings.defaultTarget)?.settings.selection ?? settings.selection
        return try await SelectionReference.compare(version: nil, settings: selection, on: c).matches
    }

    /// Waits until the daemons are idle and the figures are consistent; returns the last figures.
    public static func settle(on c: Connection, timeout: Duration = .seconds(120)) async throws -> PipelineFigures {
        var last = PipelineFigures()
        _ = try await TovTestDatabase.eventually(timeout: timeout) {
            guard try await TovTestDatabase.count("tov.model_versions", on: c, where: "status IN ('training', 'scoring')") == 0 else { return false }
            last = try await measure(on: c)
            return last.isConsistent
        }
        return last
    }
}

/// Rows inserted by concurrent writers while a scenario runs, until stopped or a limit is reached.
/// A writer whose insert fails (the server restarts, its backend is terminated) reconnects and goes
/// on; only committed inserts are counted.
public final class BackgroundWriters: @unchecked Sendable {
    // @unchecked: the counters and the stop flag are under `lock`.
    private let lock = NSLock()
    private var stopped = false
    private var reserved = 0
    private var committed = 0
    private var failures = 0
    private var tasks: [Task<Void, Never>] = []

    /// `writers` connections each insert `rowsPerInsert` rows every `interval`, up to `limit` rows in all.
    public init(conninfo: String, writers: Int, rowsPerInsert: Int, interval: Duration, limit: Int = .max) {
        for writer in 0..<writers {
            tasks.append(Task {
                var connection: Connection?
                while self.reserve(rowsPerInsert, limit: limit) {
                    do {
                        if connection == nil { connection = try await Connection.connect(conninfo) }
                        try await TovTestDatabase.insertCandidates(rowsPerInsert, on: connection!, prefix: "writer \(writer) text", source: "w\(writer)")
                        self.settle(rowsPerInsert, committed: true)
                    } catch {
                        self.settle(rowsPerInsert, committed: false)
                        connection?.close()
                        connection = nil
                    }
                    try? await Task.sleep(for: interval)
                }
                connection?.close()
            })
        }
    }

    private func reserve(_ n: Int, limit: Int) -> Bool {
        lock.withLock {
            guard !stopped, reserved + n <= limit else { return false }
            reserved += n
            return true
        }
    }

    private func settle(_ n: Int, committed ok: Bool) {
        lock.withLock {
            if ok { committed += n } else { reserved -= n; failures += 1 }
        }
    }

    public var rowsInserted: Int { lock.withLock { committed } }
    public var failedInserts: Int { lock.withLock { failures } }

    /// Stops the writers and waits for their last insert.
    public func stop() async {
        lock.withLock { stopped = true }
        for task in tasks { await task.value }
    }

    /// Waits until the writers reached the limit.
    public func finish() async {
        for task in tasks { await task.value }
    }
}

/// A datagram socket standing in for systemd's $NOTIFY_SOCKET: collects every message a daemon sends.
public final class NotifySocketListener: @unchecked Sendable {
    // @unchecked: `received` and `closed` are under `lock`; the fd and path never change.
    public let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [String] = []
    private var closed = false

    public init() {
        path = NSTemporaryDirectory() + "tovd-notify-\(UUID().uuidString.prefix(8))"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !lock.withLock({ closed }) {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 {
                    let message = String(decoding: buffer[0..<n], as: UTF8.self)
                    lock.withLock { received.append(message) }
                }
            }
        }.start()
    }

    /// Every message so far, oldest first.
    public var messages: [String] { lock.withLock { received } }

    public func close() {
        lock.withLock { closed = true }
        usleep(300_000)
        Glibc.close(fd)
        unlink(path)
    }
}
