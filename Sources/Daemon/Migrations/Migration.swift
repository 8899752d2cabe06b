/// One numbered schema change, `NNN_name.up.sql` with its `NNN_name.down.sql`.
///
/// Files are embedded in the binary at build time (the EmbedMigrations plugin), so an installed `tovd`
/// needs nothing beside it to create or check its schema.
public struct Migration: Sendable, Equatable {
    public var version: Int
    public var name: String
    public var up: String
    public var down: String

    /// All migrations this build knows, ordered by version.
    public static let all: [Migration] = {
        do {
            return try parse(files: embeddedFiles)
        } catch {
            preconditionFailure("embedded migrations are malformed: \(error)")
        }
    }()

    /// The newest schema version this build knows.
    public static var latestVersion: Int { all.last?.version ?? 0 }

    /// Pairs `NNN_name.up.sql`/`.down.sql` files. Any other file name is refused, as is a version gap
    /// or an up file without its down file: a misnamed file would otherwise be skipped silently.
    static func parse(files: [(name: String, sql: String)]) throws -> [Migration] {
        var ups: [Int: (String, String)] = [:]
        var downs: [Int: (String, String)] = [:]
        for file in files {
            let parts = file.name.split(separator: "_", maxSplits: 1)
            guard parts.count == 2, parts[0].count == 3, let version = Int(parts[0]), version > 0 else {
                throw DaemonError(.migration, "migration file \(file.name) must be named NNN_name.up.sql or NNN_name.down.sql")
            }
            let rest = String(parts[1])
            if rest.hasSuffix(".up.sql") {
                ups[version] = (String(rest.dropLast(".up.sql".count)), file.sql)
            } else if rest.hasSuffix(".down.sql") {
                downs[version] = (String(rest.dropLast(".down.sql".count)), file.sql)
            } else {
                throw DaemonError(.migration, "migration file \(file.name) must end in .up.sql or .down.sql")
            }
        }
        var result: [Migration] = []
        for (index, version) in ups.keys.sorted().enumerated() {
            guard version == index + 1 else {
                throw DaemonError(.migration, "migration versions must be 001, 002, ... without gaps; found \(version) at position \(index + 1)")
            }
            let (name, up) = ups[version]!
            guard let (downName, down) = downs[version], downName == name else {
                throw DaemonError(.migration, "migration \(version)_\(name).up.sql has no matching \(version)_\(name).down.sql")
            }
            result.append(Migration(version: version, name: name, up: up, down: down))
        }
        if let stray = Set(downs.keys).subtracting(ups.keys).first {
            throw DaemonError(.migration, "migration \(stray) has a down file but no up file")
        }
        return result
    }
}
