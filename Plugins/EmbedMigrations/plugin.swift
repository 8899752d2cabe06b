import Foundation
import PackagePlugin

/// Embeds `migrations/*.sql` into the Daemon module at build time, so the installed `tovd` carries
/// its schema and the SQL files stay the one source of truth (no generated copy in the tree).
@main
struct EmbedMigrations: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let directory = context.package.directoryURL.appending(path: "migrations")
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedMigrations.swift")
        return [.buildCommand(
            displayName: "Embedding \(files.count) migration files",
            executable: try context.tool(named: "EmbedMigrationsTool").url,
            arguments: [output.path] + files.map(\.path),
            inputFiles: files + [directory],
            outputFiles: [output])]
    }
}
