@testable import Daemon
import Foundation
import Logging
import PQ
import Synchronization
import Testing
import TovTesting
import ToVPipeline
import Surrogate

/// The leader's trainer with two targets on a real database (issue 26): one base model, and a model
/// version per target trained from that target's own Z_val under its own val_lr_ratio. The trainer
/// is stepped by hand under a lease this test holds, so nothing but the trainer acts.
@Suite("Trainer with several targets in PostgreSQL", .serialized)
struct TargetTrainerTests {
    /// A leader's trainer on `c`, holding the lease for the test's length.
    struct Leader {
        let trainer: Trainer
        let fence: LeaderFence

        init(on c: Connection) async throws {
            let clock = DaemonClock.continuous
            let leadership = Leadership(instance: "trainer-test", clock: clock)
            let epoch = try #require(try await LeaderStore.leaseAcquire(holder: leadership.holder, instance: "trainer-test", seconds: 3600, on: c))
            leadership.set(.init(epoch: epoch, validUntil: clock.now + .seconds(3600)))
            fence = LeaderFence(epoch: epoch, leadership: leadership)
            trainer = Trainer(instance: "trainer-test", settings: SettingsCache(maxAge: .zero), workers: WakeupSignal(), metrics: DaemonMetrics(),
                              stopping: StopFlag(), clock: clock, faults: .none, logger: Logger(label: "test"))
        }

        func step(on c: Connection) async throws { _ = try await trainer.step(fence: fence, on: c) }
    }

    /// A tiny pool of validated rows, the target 'drop' with val_lr_ratio 0.2, and each target's Z_val
    /// with one row the validator rejects; with `code`, a third target 'code' with two Z_val rows.
    static func twoTargets(_ c: Connection, code: Bool = false) async throws {
        try await c.simpleQuery(TinyPipeline.settingsSQL(uSize: 16, budgetRows: 10, bins: 2))
        try await TovTestDatabase.insertCandidates(40, on: c)
        // Validated as a worker would: the trainer reads only tov.ready.
        try await c.simpleQuery("""
            INSERT INTO tov.ready (candidate_id, prompt_bytes, response_bytes)
            SELECT id, octet_length(prompt), octet_length(response) FROM tov.candidates;
            DELETE FROM tov.jobs WHERE model_version = 0;
            INSERT INTO tov.targets (name, settings) VALUES ('drop', '{"val_lr_ratio": 0.2}');
            INSERT INTO tov.validation (prompt, response) SELECT 'how to ' || g, 'answer number ' || g FROM generate_series(1, 5) g;
            INSERT INTO tov.validation (prompt, response, target) SELECT 'drop ' || g || ' bytes', 'dropped ' || g || ' times', 'drop' FROM generate_series(1, 4) g;
            INSERT INTO tov.validation (prompt, response, target) VALUES ('empty', ' ', 'default'), ('empty too', ' ', 'drop');
            """)
        if code {
            try await c.simpleQuery("""
                INSERT INTO tov.targets (name) VALUES ('code');
                INSERT INTO tov.validation (prompt, response, target) VALUES ('fn main', '{ }', 'code'), ('let x', '= 1', 'code');
                """)
        }
    }

    /// θ_val^1..L's weights trained here, off the trainer, from the Z_val rows of `target` that the
    /// validator accepts and the stored base model, one array per epoch.
    static func valWeights(zvalOf target: String, ratio: Double, base: Int, on c: Connection) async throws -> [[Float]] {
        let config = try await TrainingStore.baseModelConfig(base, on: c)
        let stored = try await TrainingStore.baseCheckpointMany(base, on: c)
        let theta0 = try #require(stored.first { $0.name == "theta0 epoch 0" }).bytes
        let trajectory = (1...config.epochs).map { epoch in stored.first { $0.name == "base epoch \(epoch)" }!.bytes }
        var zval: [RowText] = []
        for row in try await c.query("""
            SELECT prompt, response FROM tov.validation v WHERE target = $1
              AND NOT EXISTS (SELECT 1 FROM tov.validation_rejects x WHERE x.validation_id = v.id) ORDER BY id
            """, [target]) {
            zval.append(RowText(id: Int64(zval.count), prompt: Array(try row.get(String.self, "prompt").utf8),
                                response: Array(try row.get(String.self, "response").utf8)))
        }
        let trained = Mutex<[Int: [UInt8]]>([:])
        let trainer = TrajectoryTrainer(config: config.with(valLearningRateRatio: ratio), logger: Logger(label: "test"))
        try await trainer.trainVal(theta0: theta0, base: trajectory, zval: zval, u: [], method: .A) { epoch, checkpoint in
            trained.withLock { $0[epoch] = checkpoint }
        }
        return try trained.withLock { trained in try (1...config.epochs).map { try SurrogateCheckpoint.decode(trained[$0]!).model.parameters } }
    }

    /// The stored θ_val^1..L weights of `version`.
    static func storedValWeights(_ version: Int, on c: Connection) async throws -> [[Float]] {
        try await c.query("SELECT data FROM tov.checkpoints WHERE model_version = $1 AND kind = 'val' ORDER BY epoch", [version])
            .map { try SurrogateCheckpoint.decode(try $0.get([UInt8].self, "data")).model.parameters }
    }

    /// The largest weight difference over every epoch.
    static func maxDifference(_ a: [[Float]], _ b: [[Float]]) -> Float {
        zip(a, b).map { zip($0, $1).map { abs($0 - $1) }.max() ?? 0 }.max() ?? .infinity
    }

    @Test func twoTargetsEachGetAVersionFromTheirOwnZvalOnOneBaseModel() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.twoTargets(c)
            let leader = try await Leader(on: c)
            // The bootstrap, then 'default' (its version rescores), then 'drop' beside it.
            for _ in 0..<3 { try await leader.step(on: c) }

            #expect(try await TovTestDatabase.count("tov.base_models", on: c) == 1)
            let versions = Array(try await c.query("""
                SELECT m.model_version, m.target_id, t.name, m.base_version, m.zval_version, m.val_lr_ratio, m.status::text AS status,
                       z.version AS target_zval_version
                FROM tov.model_versions m JOIN tov.targets t USING (target_id) JOIN tov.target_zval z USING (target_id) ORDER BY m.target_id
                """))
            try #require(versions.count == 2)
            #expect(try versions.map { try $0.get(String.self, "name") } == ["default", "drop"])
            #expect(try versions.map { try $0.get(Int32.self, "base_version") } == [1, 1])
            #expect(try versions.map { try $0.get(Double.self, "val_lr_ratio") } == [0.1, 0.2])
            #expect(try versions.map { try $0.get(String.self, "status") } == ["scoring", "scoring"])
            for row in versions {
                #expect(try row.get(Int64.self, "zval_version") == row.get(Int64.self, "target_zval_version"))
            }
            // Each target's rejected row is recorded, and the second refresh kept the first's.
            let rejected = try await c.query("""
                SELECT v.target, x.reason::text AS reason FROM tov.validation_rejects x JOIN tov.validation v ON v.id = x.validation_id ORDER BY v.target
                """).map { "\(try $0.get(String.self, "target")): \(try $0.get(String.self, "reason"))" }
            #expect(rejected == ["default: empty_response", "drop: empty_response"])
            // Each θ_val is what training on that target's own rows gives, not on the other's. Compared
            // by weights (checkpoints of equal weights were seen to differ byte for byte), with room for
            // a repeat that is not bit-exact: far closer to its own rows' result (equal here) than to the other's.
            for (row, other) in zip(versions, ["drop", "default"]) {
                let version = Int(try row.get(Int32.self, "model_version"))
                let (name, ratio) = (try row.get(String.self, "name"), try row.get(Double.self, "val_lr_ratio"))
                let stored = try await Self.storedValWeights(version, on: c)
                let own = Self.maxDifference(stored, try await Self.valWeights(zvalOf: name, ratio: ratio, base: 1, on: c))
                let others = Self.maxDifference(stored, try await Self.valWeights(zvalOf: other, ratio: ratio, base: 1, on: c))
                #expect(own * 100 < others, "model version \(version) (\(name)): \(own) from its own Z_val, \(others) from \(other)'s")
            }
            // Status names the target the trainer worked for last.
            let activity = try await c.query("SELECT activity, detail FROM tov.leader_activity").first!
            #expect(try activity.get(String.self, "activity") == "rescoring")
            #expect(try activity.getOptional(String.self, "detail") == "target drop: model version \(try versions[1].get(Int32.self, "model_version"))")
        }
    }

    /// A target whose every Z_val row is rejected has nothing to train on; the other target trains.
    @Test func aTargetWithOnlyRejectedZvalRowsDoesNotStopTheOther() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.twoTargets(c)
            try await c.execute("DELETE FROM tov.validation WHERE target = 'default' AND response <> ' '")
            let leader = try await Leader(on: c)
            // The bootstrap, 'default' (nothing to train on), 'drop', then 'default' again.
            for _ in 0..<4 { try await leader.step(on: c) }
            let versions = try await c.query("SELECT target_id FROM tov.model_versions").map { try $0.get(Int32.self, "target_id") }
            #expect(versions == [2])
            let activity = try await c.query("SELECT activity, detail FROM tov.leader_activity").first!
            #expect(try activity.get(String.self, "activity") == "waiting for Z_val")
            #expect(try activity.getOptional(String.self, "detail")
                    == "target default: every row of tov.validation with target = 'default' was rejected (see tov.validation_rejects)")
        }
    }

    /// `tovd refresh` for every target is served by the last target's version, not the first one's;
    /// `tovd refresh --target drop` refreshes only 'drop'.
    @Test func refreshRequestsAreServedPerTarget() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await Self.twoTargets(c, code: true)
            let leader = try await Leader(on: c)
            for _ in 0..<4 { try await leader.step(on: c) }
            // The selection keeper's switch, in short: the rescored versions become the complete ones.
            let switchIn = "UPDATE tov.model_versions SET status = 'superseded' WHERE status = 'complete'; "
                + "UPDATE tov.model_versions SET status = 'complete', completed_at = now() WHERE status = 'scoring'"
            try await c.simpleQuery(switchIn)
            // Nothing is trained once all are served: the step measures the first target's Z_val signal.
            try await leader.step(on: c)
            #expect(try await TovTestDatabase.count("tov.model_versions", on: c) == 3, "nothing is due once all are served")
            #expect(try await TovTestDatabase.count("tov.model_versions", on: c, where: "zval_signal_measured_at IS NOT NULL") == 1)

            let every = try await TrainingStore.requestInsert(.refresh, on: c)
            try await leader.step(on: c)
            let first = try await c.query("SELECT model_version, target_id FROM tov.model_versions ORDER BY model_version DESC LIMIT 1").first!
            #expect(try first.get(Int32.self, "target_id") == 1)
            #expect(try await TovTestDatabase.count("tov.training_requests", on: c, where: "id = \(every) AND started_at IS NOT NULL AND served_at IS NULL") == 1)
            let settings = try await SettingsCache.load(on: c)
            #expect(try await TrainingStore.snapshot(settings: settings, memoryProblem: nil, on: c).targets.map(\.answered) == [[every], [], []])
            // 'drop' answers it too; its start must not make 'default''s answer look older than the request.
            try await leader.step(on: c)
            #expect(try await TrainingStore.snapshot(settings: settings, memoryProblem: nil, on: c).targets.map(\.answered) == [[every], [every], []])
            #expect(try await TovTestDatabase.count("tov.training_requests", on: c, where: "id = \(every) AND served_at IS NULL") == 1)
            try await leader.step(on: c)
            let last = try await c.query("SELECT model_version, target_id FROM tov.model_versions ORDER BY model_version DESC LIMIT 1").first!
            #expect(try last.get(Int32.self, "target_id") == 3)
            let served = try await c.query("SELECT served_by FROM tov.training_requests WHERE id = $1", [every]).first!
            #expect(try served.getOptional(String.self, "served_by") == "model version \(try last.get(Int32.self, "model_version"))")
            try await leader.step(on: c)
            #expect(try await TovTestDatabase.count("tov.model_versions", on: c) == 6, "each target refreshed once for the request")

            try await c.simpleQuery(switchIn)
            let named = try await TrainingStore.requestInsert(.refresh, target: 2, on: c)
            try await leader.step(on: c)
            try await leader.step(on: c)
            let versions = try await c.query("SELECT target_id, status::text AS status FROM tov.model_versions WHERE status IN ('training', 'scoring')")
            #expect(try versions.map { try $0.get(Int32.self, "target_id") } == [2])
            #expect(try await TovTestDatabase.count("tov.training_requests", on: c, where: "id = \(named) AND served_at IS NOT NULL") == 1)
        }
    }
}
