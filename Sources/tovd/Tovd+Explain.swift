import ArgumentParser
import Daemon
import PQ

extension Tovd {
    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Explain why a candidate row is or is not selected.",
            discussion: """
                Prints the row's state (rejected; in U, the base subset of the base model the current \
                version was trained on; waiting; scored), its losses under θ_bas and θ_val for each scoring \
                epoch, φ, its length bin, its rank in the bin, the bin's quota and the verdict. During a \
                rebase it also says when the row is in the new base model's U (out once that base's version \
                switches in). The same numbers are in the view tov.score_details (a row per target).
                With several targets and no --target, it explains the row under each target in turn (each has \
                its own version, settings and selection); --target picks one.
                  tovd explain 123
                  tovd explain 123 --target drop
                """)

        @Argument(help: "tov.candidates.id") var id: Int64
        @Option(help: ArgumentHelp("Explain under this target only (default: every target; `default` when there is one).", valueName: "name"))
        var target: String?
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let connection = try await database.connect(applicationName: "tovd explain")
            defer { connection.close() }
            var explanations: [(String, Explanation)] = []
            do {
                let targets: [String]
                if let target {
                    _ = try await requireTarget(target, on: connection)
                    targets = [target]
                } else {
                    targets = try await TargetStore.targetNameGetMany(on: connection)
                }
                for name in targets {
                    explanations.append((name, try await Explanation.load(candidateID: id, target: name, on: connection)))
                }
            } catch let error as PQError where error.sqlState == .insufficientPrivilege {
                throw CLIError("tovd explain reads the pool and its scores (tov.candidates, tov.scores, tov.score_details), "
                    + "which tov_reader may not: it sees only the views (tov.selected, tov.selections, tov.status, tov.target_status, "
                    + "tov.workers) and tov.validation. "
                    + "Run it as the daemon's role, or grant SELECT on those tables.")
            }
            print("candidate \(id)")
            // One target reads as before; several get a heading each (an unknown id is unknown to all).
            if (explanations.count == 1 && target == nil) || explanations.first?.1.lines == ["no candidate with id \(id)"] {
                for line in explanations[0].1.lines { print("  " + line) }
                return
            }
            for (name, explanation) in explanations {
                print("  target \(name)")
                for line in explanation.lines { print("    " + line) }
            }
        }
    }
}
