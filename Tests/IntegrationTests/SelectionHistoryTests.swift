@testable import Daemon
import Foundation
import PQ
import Selection
import Testing
import TovTesting

/// `tov.selection_history` when candidates leave the pool behind the leader's back: the foreign key
/// cascade takes them out of the selection, and migration 003's triggers record it.
@Suite("Selection history of deleted candidates")
struct SelectionHistoryTests {
    /// The candidates whose last history row (by version) is `in`: what the history says is selected.
    static func replayed(on c: Connection) async throws -> [Int64] {
        try await c.query("""
            SELECT candidate_id FROM (
                SELECT DISTINCT ON (candidate_id) candidate_id, change FROM tov.selection_history
                ORDER BY candidate_id, selection_version DESC) last
            WHERE change = 'in' ORDER BY candidate_id
            """).map { try $0.get(Int64.self, 0) }
    }

    static func selected(on c: Connection) async throws -> [Int64] {
        try await c.query("SELECT id FROM tov.selected ORDER BY id").map { try $0.get(Int64.self, 0) }
    }

    @Test func deletedAndTruncatedCandidatesLeaveTheHistory() async throws {
        try await TovTestDatabase.withMigrated { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            try await SelectionPropertyTests.createCompleteModelVersion(on: c)
            var g = SplitMix64(seed: 16)
            try await SelectionPropertyTests.addScoredRows(40, on: c, step: 0, random: &g)
            let settings = SelectionSettings(budget: .rows(10))
            func update() async throws -> SelectionWriter.Change {
                try await c.transaction { tx in try await SelectionWriter.update(in: tx, modelVersion: 1, settings: settings) }
            }
            let first = try await update()
            let version = first.selectionVersion
            let before = try await Self.selected(on: c)
            let replayedBefore = try await Self.replayed(on: c)
            #expect(before.count == 10 && replayedBefore == before)

            // It entered at `version`, so its `out` row cannot share that version's key.
            let victim = before[0]
            try await c.execute("DELETE FROM tov.candidates WHERE id = $1", [victim])
            let history = try await c.query("SELECT selection_version, change FROM tov.selection_history WHERE candidate_id = $1 ORDER BY selection_version", [victim])
                .map { "\(try $0.get(Int64.self, 0))/\(try $0.get(String.self, 1))" }
            #expect(history == ["\(version)/in", "\(version + 1)/out"])
            let replayedNow = try await Self.replayed(on: c), selectedNow = try await Self.selected(on: c)
            #expect(replayedNow == selectedNow)

            // The leader's next update brings in a replacement at that next version, with no key conflict.
            let second = try await update()
            #expect(second.selectionVersion == version + 1 && second.entered >= 1, "\(second)")
            let after = try await Self.selected(on: c)
            let replayedAfter = try await Self.replayed(on: c)
            #expect(after.count == 10 && replayedAfter == after)

            // TRUNCATE ... CASCADE empties the selection without row triggers.
            try await c.simpleQuery("TRUNCATE tov.candidates CASCADE")
            #expect(try await TovTestDatabase.count("tov.selection_history", on: c, where: "change = 'out' AND selection_version = \(version + 2)") == 10)
            #expect(try await Self.replayed(on: c).isEmpty)
        }
    }
}
