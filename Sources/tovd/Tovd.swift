import ArgumentParser

@main
struct Tovd: AsyncParsableCommand {
    /// The release, as `tovd --version` and export manifests give it. A manifest also records the
    /// executable's SHA-256, which tells builds of one version apart.
    static let version = "0.10.0"

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

            Several targets (validation sets, each with its own selection) share one pool and base model:
              tovd target add drop --budget '{"rows": 5000}'
              tovd import drop-zval.jsonl --into validation --target drop
            """,
        version: version,
        subcommands: [
            Run.self, Migrate.self, Import.self, Export.self, Status.self, Refresh.self, Rebase.self, Explain.self, Target.self, DevDB.self,
            Pretrain.self, Base.self, Score.self, DataCommand.self, Bench.self, Evaluate.self, EvaluateCompare.self,
        ]
    )
}
