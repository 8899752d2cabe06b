import Logging
import PQ
import Surrogate

/// The live model versions (complete, and the one being rescored), loaded from `tov.checkpoints`.
/// Checks the version list on every batch (one small query) and loads a version's checkpoints only
/// when it first appears, so a refresh is picked up without a restart. Base checkpoints are shared
/// between versions of one base model.
public final class ModelCache: @unchecked Sendable {
    private var loaded: [Int: LoadedVersion] = [:]
    private var bases: [Int: [SurrogateCheckpoint]] = [:]
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// The live versions, oldest first. Used by one worker at a time.
    func live(on connection: Connection) async throws -> [LoadedVersion] {
        var result: [LoadedVersion] = []
        var seenBases = Set<Int>()
        for row in try await connection.query(Queries.modelVersionLiveMany) {
            let version = Int(try row.get(Int32.self, 0))
            let base = Int(try row.get(Int32.self, 1))
            let epochs = Int(try row.get(Int32.self, 5))
            seenBases.insert(base)
            if let cached = loaded[version] {
                result.append(cached)
                continue
            }
            let started = ContinuousClock.now
            if bases[base] == nil {
                var checkpoints: [SurrogateCheckpoint] = []
                for epoch in 1...epochs {
                    checkpoints.append(try await load(base: base, version: 0, kind: "base", epoch: epoch, on: connection))
                }
                bases[base] = checkpoints
            }
            var val: [SurrogateCheckpoint] = []
            for epoch in 1...epochs {
                val.append(try await load(base: base, version: version, kind: "val", epoch: epoch, on: connection))
            }
            let entry = try LoadedVersion(modelVersion: version, baseVersion: base, base: bases[base]!, val: val)
            loaded[version] = entry
            result.append(entry)
            logger.info("model version loaded", metadata: [
                "model_version": "\(version)", "base_version": "\(base)", "seconds": "\((ContinuousClock.now - started).seconds)",
            ])
        }
        // A worker scores with one model at a time: all of them can share one set of forward buffers.
        if let scratch = result.first?.base.first {
            for version in result { for model in version.base + version.val { model.shareActivations(with: scratch) } }
        }
        let liveVersions = Set(result.map(\.modelVersion))
        loaded = loaded.filter { liveVersions.contains($0.key) }
        bases = bases.filter { seenBases.contains($0.key) }
        return result
    }

    private func load(base: Int, version: Int, kind: String, epoch: Int, on connection: Connection) async throws -> SurrogateCheckpoint {
        let rows = try await connection.query(Queries.checkpointGet, [base, version, kind, epoch])
        guard let row = rows.first else {
            throw DaemonError(.checkpoint, "checkpoint \(kind)/\(epoch) of base model \(base), version \(version) is missing from tov.checkpoints")
        }
        do {
            return try SurrogateCheckpoint.decode(try row.get([UInt8].self, 0))
        } catch {
            throw DaemonError(.checkpoint, "checkpoint \(kind)/\(epoch) of base model \(base), version \(version) is corrupt (\(error)); scoring waits until it loads: restore the row, or change tov.validation so the leader trains a new version")
        }
    }
}
