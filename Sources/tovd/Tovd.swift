import ArgumentParser

@main
struct Tovd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tovd",
        abstract: "Keeps a Train-on-Validation selection of a PostgreSQL pool current."
    )
}
