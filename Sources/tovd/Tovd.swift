import ArgumentParser

@main
struct Tovd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tovd",
        abstract: "Keeps a Train-on-Validation (ToV) selection of a growing PostgreSQL pool current.",
        discussion: """
            Insert candidate examples into tov.candidates and a small validation set from your target \
            task into tov.validation; `tovd run` scores every candidate by how much training on the \
            validation set lowers its loss, and keeps the best-value subset in the view tov.selected.

            Database: --database-url, else $DATABASE_URL, else the private cluster of `tovd dev-db start`.

            Start here:
              tovd dev-db start                 # a private PostgreSQL in ./.tovd/pg
              tovd migrate up                   # create the tov schema
              tovd import pool.jsonl            # candidates
              tovd import zval.jsonl --into validation
              tovd run                          # the daemon (systemd: see docs/operations.md)
              tovd status
            """,
        subcommands: [
            Run.self, Migrate.self, Import.self, Export.self, Status.self, Refresh.self, Rebase.self, Explain.self, DevDB.self,
            Pretrain.self, Base.self, Score.self, DataCommand.self, Bench.self, Evaluate.self, EvaluateCompare.self,
        ]
    )
}
