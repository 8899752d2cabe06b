@testable import Daemon
import Foundation
import Testing

@Suite("Migration files")
struct MigrationFileTests {
    @Test func embeddedMigrationsMatchTheFiles() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("migrations")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
        var onDisk: [Int: (String, String)] = [:]
        for file in files {
            let sql = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            let version = Int(file.prefix(3))!
            var pair = onDisk[version] ?? ("", "")
            if file.hasSuffix(".up.sql") { pair.0 = sql } else { pair.1 = sql }
            onDisk[version] = pair
        }
        #expect(onDisk.count == Migration.all.count, "the EmbedMigrations build plugin did not embed every file of migrations/")
        for migration in Migration.all {
            // The plugin writes each file followed by a newline before the closing delimiter.
            #expect(onDisk[migration.version]?.0.trimmingCharacters(in: .newlines) == migration.up.trimmingCharacters(in: .newlines),
                    "migration \(migration.version) up differs from its file")
            #expect(onDisk[migration.version]?.1.trimmingCharacters(in: .newlines) == migration.down.trimmingCharacters(in: .newlines),
                    "migration \(migration.version) down differs from its file")
        }
    }

    @Test func misnamedFilesAreRefused() {
        for name in ["1_init.up.sql", "001init.up.sql", "001_init.sql", "abc_init.up.sql", "001_init.UP.sql"] {
            #expect(throws: DaemonError.self, "\(name)") { try Migration.parse(files: [(name, "select 1")]) }
        }
        #expect(throws: DaemonError.self, "up without down") { try Migration.parse(files: [("001_a.up.sql", "")]) }
        #expect(throws: DaemonError.self, "gap") {
            try Migration.parse(files: [("001_a.up.sql", ""), ("001_a.down.sql", ""), ("003_c.up.sql", ""), ("003_c.down.sql", "")])
        }
        let ok = try? Migration.parse(files: [("002_b.up.sql", "B"), ("001_a.down.sql", "a"), ("001_a.up.sql", "A"), ("002_b.down.sql", "b")])
        #expect(ok?.map(\.version) == [1, 2])
        #expect(ok?.first?.up == "A")
    }
}
