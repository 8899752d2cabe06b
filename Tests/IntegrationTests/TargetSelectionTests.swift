@testable import Daemon
import Foundation
import Logging
import PQ
import Selection
import Testing
import TovTesting

/// Issue 26: the selection keeper keeps one selection per target on one pool. Two targets with
/// different budgets, bins and score_fn, each with its own complete version on the shared base
/// model; the real keeper (SelectionKeeper.step, under a real lease) against PostgreSQL, each
/// target's selection checked against the Swift reference `select()` on its own scores.
@Suite("Selections per target")
struct TargetSelectionTests {
    /// Target 1 `default` (global settings) and target 2 `drop` (its own budget, bins, score_fn).
    static let globalSettingsSQL = """
        UPDATE tov.settings SET value = '{"rows": 10}' WHERE key = 'budget';
        UPDATE tov.settings SET value = '2' WHERE key = 'bins';
        UPDATE tov.settings SET value = '"improvement"' WHERE key = 'score_fn';
        """
    static let dropSettings = #"{"budget": {"rows": 7}, "bins": 3, "score_fn": "abs"}"#

    /// Base model 1; target `drop`; version 1 (target `default`) and 2 (target `drop`), complete;
    /// `rows` candidates scored under both. Returns the candidate ids.
    static func twoTargets(_ c: Connection, rows: Int = 60) async throws -> [Int64] {
        try await c.simpleQuery(globalSettingsSQL + """
            INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (16, 2, '{}', 'complete');
            INSERT INTO tov.targets (name, settings) VALUES ('drop', '\(dropSettings)');
            INSERT INTO tov.model_versions (base_version, zval_version, method, status, target_id) VALUES (1, 1, 'A', 'complete', 1);
            INSERT INTO tov.model_versions (base_version, zval_version, method, status, target_id) VALUES (1, 1, 'A', 'complete', 2);
            """)
        let ids = try await TovTestDatabase.insertCandidates(rows, on: c)
        try await addScores(ids, version: 1, on: c)
        try await addScores(ids, version: 2, on: c)
        return ids
    }

    /// Scores of `ids` under `version` as a worker writes them: L = 2 losses drawn from a hash of
    /// (id, version), φ under the score_fn the version's target sees, tokens from the id.
    static func addScores(_ ids: [Int64], version: Int, on c: Connection) async throws {
        try await c.execute("""
            INSERT INTO tov.scores (candidate_id, model_version, score, base_loss, val_loss, base_losses, val_losses, uncertainty, tokens)
            SELECT r.id, $2::int, tov.phi(r.b, r.v, tov.target_setting(m.target_id, 'score_fn') #>> '{}'),
                   (r.b[1] + r.b[2]) / 2, (r.v[1] + r.v[2]) / 2, r.b, r.v, r.b[2] / 10, 3 + (r.id % 9)::int
            FROM (SELECT id, ARRAY[2 + pg_temp.h(id, $2::int, 1), 2 + pg_temp.h(id, $2::int, 2)]::real[] AS b,
                             ARRAY[2 + pg_temp.h(id, $2::int, 3), 2 + pg_temp.h(id, $2::int, 4)]::real[] AS v
                  FROM unnest($1::bigint[]) AS id) r
            JOIN tov.model_versions m ON m.model_version = $2::int
            """, [ids, version])
    }

    /// A pseudo-random number in [-1, 1) from (id, version, k): repeatable losses for the scores.
    static let hashFunctionSQL = """
        CREATE FUNCTION pg_temp.h(id bigint, version int, k int) RETURNS real LANGUAGE sql IMMUTABLE AS $$
            SELECT (get_byte(decode(md5(id || ':' || version || ':' || k), 'hex'), 0) - 128) / 128.0
        $$
        """

    /// The real keeper, with a lease of its own and no pacing gap.
    struct Keeper {
        let keeper: SelectionKeeper
        let fence: LeaderFence
        let connection: Connection

        init(on c: Connection, settings: SettingsCache = SettingsCache(maxAge: .zero)) async throws {
            let clock = DaemonClock.continuous
            keeper = SelectionKeeper(settings: settings, workers: WakeupSignal(), metrics: DaemonMetrics(), minimumGap: .zero,
                                     clock: clock, logger: Logger(label: "test"))
            let leadership = Leadership(instance: "keeper", clock: clock)
            let epoch = try #require(try await LeaderStore.leaseAcquire(holder: leadership.holder, instance: "keeper", seconds: 600, on: c))
            fence = LeaderFence(epoch: epoch, leadership: leadership)
            connection = c
        }

        @discardableResult
        func step() async throws -> Duration { try await keeper.step(fence: fence, on: connection) }
    }

    /// Each target's selection equals the reference over its complete version's scores under its
    /// own settings, every stored bin is the reference's, and its history replays to it.
    static func expectReferenceSelections(on c: Connection, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let settings = try await SettingsCache.load(on: c)
        for target in settings.targets {
            let selection = target.settings.selection
            let comparison = try await SelectionReference.compare(version: nil, settings: selection, target: target.name, on: c)
            #expect(comparison.matches, "\(context): target \(target.name) differs from the reference over \(comparison.scoredRows) rows",
                    sourceLocation: sourceLocation)
            let rows = try await SelectionReference.scoreMany(version: nil, target: target.name, on: c)
            let reference = lengthBins(rows, bins: max(selection.bins, 1))
            let stored = try await c.query("""
                SELECT s.candidate_id, s.length_bin FROM tov.scores s JOIN tov.model_versions m USING (model_version)
                WHERE m.status = 'complete' AND m.target_id = $1 AND s.length_bin IS NOT NULL
                """, [target.id])
            let wrongBins = try stored.filter { reference[try $0.get(Int64.self, 0)] != Int(try $0.get(Int32.self, 1)) }.count
            #expect(wrongBins == 0 && stored.count == rows.count,
                    "\(context): target \(target.name): \(wrongBins) bins wrong, \(stored.count) of \(rows.count) binned", sourceLocation: sourceLocation)
            // The counts the next update starts from are the bins' sizes.
            let counts = try await c.query("SELECT bin_rows FROM tov.selection_state WHERE target_id = $1", [target.id]).first!.getOptional([Int].self, 0)
            let sizes = (0..<max(selection.bins, 1)).map { bin in reference.values.filter { $0 == bin }.count }
            #expect(counts == sizes, "\(context): target \(target.name) stores bin counts \(counts.map { "\($0)" } ?? "NULL"), its bins hold \(sizes)",
                    sourceLocation: sourceLocation)
            let replayed = try await c.query("""
                SELECT candidate_id FROM (
                    SELECT DISTINCT ON (candidate_id) candidate_id, change FROM tov.selection_history WHERE target_id = $1
                    ORDER BY candidate_id, selection_version DESC) last
                WHERE change = 'in' AND EXISTS (SELECT 1 FROM tov.candidates c WHERE c.id = last.candidate_id)
                ORDER BY candidate_id
                """, [target.id]).map { try $0.get(Int64.self, 0) }
            let selected = try await c.query("SELECT id FROM tov.selections WHERE target = $1 ORDER BY id", [target.name]).map { try $0.get(Int64.self, 0) }
            #expect(replayed == selected, "\(context): target \(target.name)'s history does not replay to its selection", sourceLocation: sourceLocation)
        }
    }

    static func selectionSize(_ target: String, on c: Connection) async throws -> Int {
        try await TovTestDatabase.count("tov.selections", on: c, where: "target = '\(target)'")
    }

    /// Everything of target 2 a switch of target 1 must leave alone, as text.
    static func targetTwoState(on c: Connection) async throws -> [String] {
        var state: [String] = []
        for sql in [
            "SELECT model_version, status::text FROM tov.model_versions WHERE target_id = 2 ORDER BY 1",
            "SELECT candidate_id, model_version, score, length_bin, random_key FROM tov.scores s JOIN tov.model_versions m USING (model_version) WHERE m.target_id = 2 ORDER BY 1, 2",
            "SELECT candidate_id, score, reason, length_bin, selected_at FROM tov.selection_items WHERE target_id = 2 ORDER BY 1",
            "SELECT selection_version, candidate_id, change, reason, model_version FROM tov.selection_history WHERE target_id = 2 ORDER BY 1, 2",
            "SELECT selection_version, model_version, settings, bin_rows, computed_at FROM tov.selection_state WHERE target_id = 2",
        ] {
            state.append(contentsOf: try await c.query("SELECT row_to_json(q)::text FROM (\(sql)) q").map { try $0.get(String.self, 0) })
        }
        return state
    }

    // MARK: - Tests

    /// One pool, two targets: each gets a selection of its own size under its own policy settings,
    /// and keeps it right through new rows, deletions of rows both selected, and a TRUNCATE of the
    /// scores (whose single report concerns both targets).
    @Test func eachTargetKeepsItsOwnSelectionOfItsOwnSize() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.execute(Self.hashFunctionSQL)
            let ids = try await Self.twoTargets(c)
            let keeper = try await Keeper(on: c)
            try await keeper.step()
            #expect(try await Self.selectionSize("default", on: c) == 10)
            #expect(try await Self.selectionSize("drop", on: c) == 7)
            try await Self.expectReferenceSelections(on: c, "first selections")
            let versions = try await c.query("SELECT target_id, selection_version FROM tov.selection_state ORDER BY 1").map { try $0.get(Int64.self, 1) }
            #expect(versions == [1, 1], "each target numbers its own selection versions")

            // Rows selected by both targets leave the pool: each version's deletion reports are its
            // own target's (one target's update must not take the other's).
            let both = try await c.query("""
                SELECT a.candidate_id FROM tov.selection_items a JOIN tov.selection_items b USING (candidate_id)
                WHERE a.target_id = 1 AND b.target_id = 2
                """).map { try $0.get(Int64.self, 0) }
            try await c.execute("DELETE FROM tov.candidates WHERE id = ANY ($1::bigint[]) OR id = ANY ($2::bigint[])",
                                [both, Array(ids.suffix(9))])
            let new = try await TovTestDatabase.insertCandidates(5, on: c, prefix: "new")
            try await Self.addScores(new, version: 1, on: c)
            try await Self.addScores(new, version: 2, on: c)
            try await keeper.step()
            try await Self.expectReferenceSelections(on: c, "after deletions and new rows")

            // Only the deletions of one target's version.
            try await c.execute("DELETE FROM tov.scores WHERE model_version = 2 AND candidate_id = ANY ($1::bigint[])", [Array(ids.prefix(6))])
            try await keeper.step()
            try await Self.expectReferenceSelections(on: c, "after deletions of target drop's scores")

            // A TRUNCATE leaves one report for every target; fewer rows come back than were binned.
            try await c.simpleQuery("TRUNCATE tov.scores")
            try await Self.addScores(Array(ids.prefix(12)), version: 1, on: c)
            try await Self.addScores(Array(ids.prefix(12)), version: 2, on: c)
            try await keeper.step()
            try await keeper.step()
            try await Self.expectReferenceSelections(on: c, "after a TRUNCATE")
            #expect(try await Self.selectionSize("drop", on: c) == 7)
        }
    }

    /// Target `default` switches to a version on a new base model: its old version is superseded
    /// and its scores deleted; target `drop`'s complete version, its rescoring version's scores, its
    /// selection, history and state, and the base losses its base model needs, are all untouched.
    @Test func aSwitchOfOneTargetLeavesTheOtherUntouched() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.execute(Self.hashFunctionSQL)
            let ids = try await Self.twoTargets(c)
            let keeper = try await Keeper(on: c)
            try await keeper.step()
            // Target drop rescoring version 3 (a job left, so it does not switch); target default's
            // version 4 on base model 2, fully rescored.
            try await c.simpleQuery("""
                INSERT INTO tov.base_models (u_size, epochs, config, status) VALUES (16, 2, '{}', 'complete');
                INSERT INTO tov.model_versions (base_version, zval_version, method, status, target_id) VALUES (1, 2, 'A', 'scoring', 2);
                INSERT INTO tov.model_versions (base_version, zval_version, method, status, target_id) VALUES (2, 2, 'A', 'scoring', 1);
                """)
            try await Self.addScores(Array(ids.prefix(30)), version: 3, on: c)
            try await c.execute("INSERT INTO tov.jobs (candidate_id, model_version) VALUES ($1, 3)", [ids[40]])
            try await Self.addScores(ids, version: 4, on: c)
            try await c.execute("""
                INSERT INTO tov.base_losses (candidate_id, base_version, losses, uncertainty, tokens)
                SELECT id, 1, '{2,2}', 0, 5 FROM unnest($1::bigint[]) id
                """, [ids])
            let before = try await Self.targetTwoState(on: c)

            try await keeper.step()

            let statuses = try await c.query("SELECT model_version, status::text FROM tov.model_versions ORDER BY 1")
                .map { "\(try $0.get(Int32.self, 0)):\(try $0.get(String.self, 1))" }
            #expect(statuses == ["1:superseded", "2:complete", "3:scoring", "4:complete"])
            #expect(try await TovTestDatabase.count("tov.scores", on: c, where: "model_version = 1") == 0, "the superseded version's scores stay")
            #expect(try await Self.targetTwoState(on: c) == before, "target drop changed with target default's switch")
            #expect(try await TovTestDatabase.count("tov.base_losses", on: c, where: "base_version = 1") == ids.count,
                    "base model 1's losses went while target drop's complete version uses it")
            #expect(try await c.query("SELECT model_version FROM tov.selection_state WHERE target_id = 1").first!.get(Int32.self, 0) == 4)
            try await Self.expectReferenceSelections(on: c, "after target default's switch")
        }
    }

    /// DELETE FROM tov.targets: the target's selection items, state, versions and scores go (its
    /// history stays); the other target's selection is untouched, and a keeper whose settings still
    /// list the dropped target steps on without an error.
    @Test func droppingATargetRemovesItsSelectionAndLeavesTheOther() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.execute(Self.hashFunctionSQL)
            try await Self.twoTargets(c)
            // Settings read once and kept: the keeper will still see target drop after it is gone.
            let manual = ManualClock()
            let stale = SettingsCache(maxAge: .seconds(3600), clock: DaemonClock(manual))
            let keeper = try await Keeper(on: c, settings: stale)
            try await keeper.step()
            #expect(try await stale.current(on: c).targets.map(\.name) == ["default", "drop"])
            let defaultBefore = try await c.query("""
                SELECT row_to_json(q)::text FROM (SELECT * FROM tov.selection_items WHERE target_id = 1 ORDER BY candidate_id) q
                """).map { try $0.get(String.self, 0) }
            let stateBefore = try await c.query("SELECT selection_version FROM tov.selection_state WHERE target_id = 1").first!.get(Int64.self, 0)

            try await c.execute("DELETE FROM tov.targets WHERE name = 'drop'")
            #expect(try await TovTestDatabase.count("tov.selection_items", on: c, where: "target_id = 2") == 0)
            #expect(try await TovTestDatabase.count("tov.selection_state", on: c, where: "target_id = 2") == 0)
            #expect(try await TovTestDatabase.count("tov.model_versions", on: c, where: "target_id = 2") == 0)
            #expect(try await TovTestDatabase.count("tov.scores", on: c, where: "model_version = 2") == 0)
            #expect(try await TovTestDatabase.count("tov.selection_history", on: c, where: "target_id = 2") == 7, "a dropped target's history stays")

            try await keeper.step()
            try await keeper.step()
            let defaultAfter = try await c.query("""
                SELECT row_to_json(q)::text FROM (SELECT * FROM tov.selection_items WHERE target_id = 1 ORDER BY candidate_id) q
                """).map { try $0.get(String.self, 0) }
            #expect(defaultAfter == defaultBefore)
            #expect(try await c.query("SELECT selection_version FROM tov.selection_state WHERE target_id = 1").first!.get(Int64.self, 0) == stateBefore,
                    "the dropped target's deleted scores changed target default's selection")
            try await Self.expectReferenceSelections(on: c, "after dropping target drop")
        }
    }

    /// A target's own score_fn changes: φ of its version is re-derived under the new function; the
    /// other target's scores and selection stay as they were.
    @Test func aTargetsOwnScoreFunctionChangeRederivesOnlyItsScores() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.execute(Self.hashFunctionSQL)
            try await Self.twoTargets(c)
            let keeper = try await Keeper(on: c)
            try await keeper.step()
            let defaultScores = "SELECT string_agg(candidate_id || ':' || score, ',' ORDER BY candidate_id) FROM tov.scores WHERE model_version = 1"
            let before = try await c.query(defaultScores).first!.get(String.self, 0)
            let defaultSelectionVersion = "SELECT selection_version FROM tov.selection_state WHERE target_id = 1"
            let selectionBefore = try await c.query(defaultSelectionVersion).first!.get(Int64.self, 0)

            try await c.execute(#"UPDATE tov.targets SET settings = settings || '{"score_fn": "relu"}' WHERE name = 'drop'"#)
            try await keeper.step()

            #expect(try await TovTestDatabase.count("tov.scores", on: c,
                                                    where: "model_version = 2 AND score IS DISTINCT FROM tov.phi(base_losses, val_losses, 'relu')") == 0)
            #expect(try await TovTestDatabase.count("tov.scores", on: c, where: "model_version = 2 AND score = 0") > 0,
                    "relu clips some scores at 0 (else this test cannot tell relu from abs)")
            #expect(try await c.query(defaultScores).first!.get(String.self, 0) == before)
            #expect(try await c.query(defaultSelectionVersion).first!.get(Int64.self, 0) == selectionBefore)
            let stored = try await c.query("SELECT settings ->> 'score_fn' FROM tov.selection_state ORDER BY target_id").map { try $0.get(String.self, 0) }
            #expect(stored == ["improvement", "relu"])
            try await Self.expectReferenceSelections(on: c, "after target drop's score_fn change")
        }
    }

    /// A target dropped while it rescores takes its versions along but not their queued jobs; the
    /// sweeper deletes those (no worker could score them) and leaves every other job: new rows',
    /// and the other target's.
    @Test func theSweeperDeletesTheJobsOfADroppedTargetsVersions() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.execute(Self.hashFunctionSQL)
            let ids = try await Self.twoTargets(c)
            try await c.execute("INSERT INTO tov.model_versions (base_version, zval_version, method, status, target_id) VALUES (1, 2, 'A', 'scoring', 2)")
            try await c.execute("""
                INSERT INTO tov.jobs (candidate_id, model_version) SELECT id, 3 FROM unnest($1::bigint[]) id;
                """, [Array(ids.prefix(20))])
            try await c.execute("INSERT INTO tov.jobs (candidate_id, model_version) SELECT id, 1 FROM unnest($1::bigint[]) id", [Array(ids.prefix(4))])
            let keeper = try await Keeper(on: c)
            let sweeper = Sweeper(interval: .seconds(30), workers: WakeupSignal(), logger: Logger(label: "test"))
            try await sweeper.step(fence: keeper.fence, on: c)
            #expect(try await TovTestDatabase.count("tov.jobs", on: c, where: "model_version = 3") == 20, "a live version's jobs were deleted")

            try await c.execute("DELETE FROM tov.targets WHERE name = 'drop'")
            try await sweeper.step(fence: keeper.fence, on: c)
            let jobs = try await c.query("SELECT model_version, count(*) FROM tov.jobs GROUP BY 1 ORDER BY 1")
                .map { "\(try $0.get(Int32.self, 0)):\(try $0.get(Int64.self, 1))" }
            #expect(jobs == ["0:\(ids.count)", "1:4"])
        }
    }

    /// One target's update fails (here a trigger refuses its rows): the other target's selection is
    /// still made in the same step, and the step then reports the failure; once the cause is gone
    /// the failed target catches up.
    @Test func oneTargetsFailureDoesNotStallTheOthers() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await c.execute(Self.hashFunctionSQL)
            try await Self.twoTargets(c)
            try await c.simpleQuery("""
                CREATE FUNCTION public.refuse_default() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.target_id = 1 THEN RAISE EXCEPTION 'refused for the test'; END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER refuse_default BEFORE INSERT ON tov.selection_items FOR EACH ROW EXECUTE FUNCTION public.refuse_default();
                """)
            let keeper = try await Keeper(on: c)
            await #expect(throws: PQError.self) { try await keeper.step() }
            #expect(try await Self.selectionSize("default", on: c) == 0)
            #expect(try await Self.selectionSize("drop", on: c) == 7, "target default's failure kept target drop from its selection")

            try await c.simpleQuery("DROP TRIGGER refuse_default ON tov.selection_items")
            try await keeper.step()
            #expect(try await Self.selectionSize("default", on: c) == 10)
            try await Self.expectReferenceSelections(on: c, "after target default's failure is gone")
        }
    }
}
