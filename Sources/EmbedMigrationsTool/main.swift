import Foundation

// Writes a Swift file that holds every migration file given, in order, as raw string literals.
// Usage: EmbedMigrationsTool OUTPUT FILE.sql...  (run by the EmbedMigrations build plugin)
let arguments = CommandLine.arguments.dropFirst()
guard let output = arguments.first else {
    FileHandle.standardError.write(Data("usage: EmbedMigrationsTool OUTPUT FILE.sql...\n".utf8))
    exit(2)
}
var text = """
    // Generated at build time by the EmbedMigrations plugin from migrations/*.sql.

    extension Migration {
        /// Every migration file shipped with this build, in file-name order.
        static let embeddedFiles: [(name: String, sql: String)] = [

    """
for path in arguments.dropFirst() {
    let url = URL(fileURLWithPath: path)
    let sql = try String(contentsOf: url, encoding: .utf8)
    // A raw string with enough #s that nothing in the SQL can close it.
    var hashes = "#"
    while sql.contains("\"\"\"" + hashes) || sql.contains("\"" + hashes) { hashes += "#" }
    text += "        (\"\(url.lastPathComponent)\", \(hashes)\"\"\"\n\(sql)\n\"\"\"\(hashes)),\n"
}
text += "    ]\n}\n"
try text.write(toFile: output, atomically: true, encoding: .utf8)
