import Foundation
import Logging
import PQ
import Surrogate

/// The live model versions of every target (each one's complete version, and the one it rescores),
/// loaded from `tov.checkpoints`.
/// Checks the version list on every batch (one small query) and loads a version's checkpoints only
/// when it first appears, so a refresh is picked up without a restart. Base checkpoints are shared
/// between versions of one base model.
///
/// A version whose checkpoints do not load (missing, bytes that do not match `sha256`, a file that
/// does not decode) is set aside, not fatal: the other versions keep scoring while its rows wait
/// unclaimed. It is reported once (log, `tov.checkpoints.load_error`, which the trainer acts on) and
/// loading is retried with a growing delay, so a repaired or retrained row is picked up.
public final class ModelCache: @unchecked Sendable {
    // @unchecked: each scoring worker owns its cache and calls it from its one loop, never concurrently.
    /// The versions a batch can score with, and the live ones it cannot (their jobs must wait).
    struct Live {
        var loaded: [LoadedVersion]
        var unloadable: Set<Int>
        /// The target of each live version (loaded or not): whose `score_fn` its φ uses.
        var targets: [Int: Int] = [:]
    }

    private struct Failure {
        var message: String
        var retryAt: DaemonClock.Instant
        var delay: Duration
    }

    private var loaded: [Int: LoadedVersion] = [:]
    private var bases: [Int: [SurrogateCheckpoint]] = [:]
    private var failures: [Int: Failure] = [:]
    let logger: Logger
    /// First and largest wait before loading a failed version again: short enough that a repair is
    /// noticed within a minute, long enough that a large corrupt checkpoint is not re-read every batch.
    let retryDelay: (first: Duration, max: Duration)

    /// Where a load failure goes besides the log (the instance's tov.workers.last_error).
    let onError: @Sendable (String) -> Void
    /// What the retry delay is counted on (the worker's clock; the continuous clock for a one-off read).
    let clock: DaemonClock

    public init(logger: Logger, retryDelay: (first: Duration, max: Duration) = (.seconds(2), .seconds(60)), clock: DaemonClock = .continuous,
                onError: @escaping @Sendable (String) -> Void = { _ in }) {
        self.clock = clock
        self.logger = logger
        self.onError = onError
        self.retryDelay = retryDelay
    }

    /// The live versions that load, oldest first (a benchmark's view; workers use `versions(on:)`).
    func live(on connection: Connection) async throws -> [LoadedVersion] {
        try await versions(on: connection).loaded
    }

    /// The live versions, oldest first, split into loaded and unloadable. Used by one worker at a time.
    func versions(on connection: Connection) async throws -> Live {
        var result = Live(loaded: [], unloadable: [])
        var seenBases = Set<Int>()
        var liveVersions = Set<Int>()
        for row in try await connection.query(Queries.modelVersionLiveMany) {
            let version = Int(try row.get(Int32.self, "model_version"))
            let base = Int(try row.get(Int32.self, "base_version"))
            let epochs = Int(try row.get(Int32.self, "epochs"))
            result.targets[version] = Int(try row.get(Int32.self, "target_id"))
            seenBases.insert(base)
            liveVersions.insert(version)
            if let cached = loaded[version] {
                result.loaded.append(cached)
                continue
            }
            if let failure = failures[version], clock.now < failure.retryAt {
                result.unloadable.insert(version)
                continue
            }
            let started = clock.now
            do {
                let entry = try await load(version: version, base: base, epochs: epochs, on: connection)
                loaded[version] = entry
                result.loaded.append(entry)
                let recovered = failures.removeValue(forKey: version) != nil
                logger.info(recovered ? "model version loaded after earlier failures" : "model version loaded", metadata: [
                    "model_version": "\(version)", "base_version": "\(base)", "seconds": "\((clock.now - started).seconds)",
                ])
            } catch let error as CheckpointLoadError {
                result.unloadable.insert(version)
                try await recordFailure(error, version: version, on: connection)
            }
        }
        // A worker scores with one model at a time: all of them can share one set of forward buffers.
        if let scratch = result.loaded.first?.base.first {
            for version in result.loaded { for model in version.base + version.val { model.shareActivations(with: scratch) } }
        }
        loaded = loaded.filter { liveVersions.contains($0.key) }
        failures = failures.filter { liveVersions.contains($0.key) }
        bases = bases.filter { seenBases.contains($0.key) }
        return result
    }

    private func load(version: Int, base: Int, epochs: Int, on connection: Connection) async throws -> LoadedVersion {
        var checkpointIDs: [Int64] = []
        if bases[base] == nil {
            var checkpoints: [SurrogateCheckpoint] = []
            for epoch in 1...epochs {
                let (id, checkpoint) = try await load(base: base, version: 0, kind: "base", epoch: epoch, on: connection)
                checkpointIDs.append(id)
                checkpoints.append(checkpoint)
            }
            bases[base] = checkpoints
        }
        var val: [SurrogateCheckpoint] = []
        for epoch in 1...epochs {
            let (id, checkpoint) = try await load(base: base, version: version, kind: "val", epoch: epoch, on: connection)
            checkpointIDs.append(id)
            val.append(checkpoint)
        }
        let importance = try await ModelVersionStore.importanceModelGet(version, on: connection)
        let entry: LoadedVersion
        do {
            entry = try LoadedVersion(modelVersion: version, baseVersion: base, base: bases[base]!, val: val, importanceModel: importance)
        } catch {
            throw CheckpointLoadError(checkpointID: nil, message: "model version \(version) does not load: \(error)")
        }
        try await connection.execute(Queries.checkpointLoadErrorClearMany, [checkpointIDs])
        return entry
    }

    /// One checkpoint, its bytes checked against `tov.checkpoints.sha256` before they are decoded.
    private func load(base: Int, version: Int, kind: String, epoch: Int, on connection: Connection) async throws -> (Int64, SurrogateCheckpoint) {
        let name = "checkpoint \(kind)/\(epoch) of base model \(base), version \(version)"
        let rows = try await connection.query(Queries.checkpointGetChecked, [base, version, kind, epoch])
        guard let row = rows.first else {
            throw CheckpointLoadError(checkpointID: nil, message: "\(name) is missing from tov.checkpoints")
        }
        let id = try row.get(Int64.self, "id")
        let bytes = try row.get([UInt8].self, "data")
        let stored = try row.get(String.self, "sha256")
        let actual = SHA256.hexDigest(of: Data(bytes))
        guard actual == stored else {
            throw CheckpointLoadError(checkpointID: id, message: "\(name) is corrupt: its bytes hash to \(actual.prefix(12))…, tov.checkpoints.sha256 says \(stored.prefix(12))…")
        }
        do {
            return (id, try SurrogateCheckpoint.decode(bytes))
        } catch {
            throw CheckpointLoadError(checkpointID: id, message: "\(name) is corrupt (\(error))")
        }
    }

    /// Logs a failure the first time it is seen (and when its reason changes), writes it to the
    /// checkpoint row, and schedules the next attempt.
    private func recordFailure(_ error: CheckpointLoadError, version: Int, on connection: Connection) async throws {
        let previous = failures[version]
        let delay = previous.map { min($0.delay * 2, retryDelay.max) } ?? retryDelay.first
        failures[version] = Failure(message: error.message, retryAt: clock.now + delay, delay: delay)
        guard previous?.message != error.message else {
            logger.debug("model version still does not load", metadata: ["model_version": "\(version)", "error": "\(error.message)"])
            return
        }
        logger.error("model version does not load; its rows wait while the other versions keep scoring", metadata: [
            "model_version": "\(version)", "error": "\(error.message)",
            "fix": "restore the tov.checkpoints row, or let the leader retrain it (it retrains checkpoints with a load_error)",
        ])
        onError("model version \(version) does not load: \(error.message)")
        if let id = error.checkpointID {
            try await connection.execute(Queries.checkpointLoadErrorSet, [id, error.message])
        }
    }
}

/// Why a checkpoint of a live version did not load; the row named by `checkpointID` (nil when
/// there is no row) gets the message as its `load_error`.
struct CheckpointLoadError: Error, CustomStringConvertible {
    var checkpointID: Int64?
    var message: String
    var description: String { message }
}
