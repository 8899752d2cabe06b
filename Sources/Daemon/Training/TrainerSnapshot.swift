/// Every fact of the database that the trainer's rules read, gathered in one go by
/// ``TrainingStore/snapshot(settings:memoryProblem:on:)``. A value, so ``TrainerPolicy`` is decided and
/// tested without a database.
struct TrainerSnapshot: Equatable, Sendable {
    /// A `tovd refresh` / `tovd rebase` not yet served by a finished piece of work. A request stays
    /// pending until the base model or version it started completes (or diverges): a leader that dies
    /// mid-training leaves it pending, and the next leader serves it.
    struct Request: Equatable, Sendable {
        enum Kind: String, Sendable { case refresh, rebase }
        var id: Int64
        var kind: Kind
        /// The one target a refresh asks for (`tovd refresh --target T`); nil: every target (a rebase
        /// is always for every target).
        var target: Int? = nil
    }

    /// The newest complete base model.
    struct Base: Equatable, Sendable {
        var version: Int
        var uSize: Int
        var config: BaseModelConfig
        /// Ready rows when U was drawn (the growth rule compares with it; 0 when unknown).
        var poolRowsAtDraw: Int
    }

    /// A target's Z_val: its rows of tov.validation, versioned by tov.target_zval.
    struct Zval: Equatable, Sendable {
        var version: Int64
        /// Seconds since the last change of the target's rows.
        var ageSeconds: Double
        var rows: Int
    }

    /// The inputs of a target's newest version that was ever served (complete or superseded).
    struct LastVersion: Equatable, Sendable {
        var baseVersion: Int
        var zvalVersion: Int64
        var method: String
    }

    /// A checkpoint that workers need and cannot have: marked `load_error` by a worker, or no row at
    /// all (a worker has no row to mark then, so the store counts the rows each live model needs).
    struct BrokenCheckpoint: Equatable, Sendable {
        enum Owner: Equatable, Sendable {
            /// θ_val of a live version (`scoring` or `complete`) of target `target`.
            case version(Int, target: Int, scoring: Bool)
            /// θ0 or θ_bas of the current base model.
            case base(Int)
        }
        var owner: Owner
        var problem: String
    }

    /// The imported θ0 that `settings.theta0` names, as tov.theta0s holds it.
    struct ImportedTheta0: Equatable, Sendable {
        var name: String
        /// Its model's shape (from the checkpoint header stored with it); nil when that cannot be read.
        var shape: Settings.SurrogateShape?
    }

    /// One target of `settings.targets` with the facts its refresh rules read. Whatever shapes the
    /// base model is the snapshot's (global); this is what a target has of its own.
    struct Target: Equatable, Sendable {
        var id: Int
        var name: String
        /// A disabled target trains nothing; its selection stays as it is.
        var enabled: Bool
        /// The global settings with the target's own values applied (``TargetSettings/settings``):
        /// its `val_lr_ratio` and `zval_debounce_seconds` are read here.
        var settings: Settings
        var zval: Zval
        /// Its version being rescored, if any (one per target: a unique index says so).
        var scoringVersion: Int?
        /// Whether a version of this target on the current base with its current Z_val, the method
        /// and its val_lr_ratio is scoring or complete, with all of its checkpoints readable.
        var currentInputsServed: Bool
        /// A version of this target with exactly its current inputs diverged before: its reason.
        var divergedVersion: String?
        var lastVersion: LastVersion?
        /// Its live (complete) version on the current base, when that version was made from the current
        /// Z_val and its Z_val signal is not measured yet: the signal is measured after the switch, so
        /// rescoring does not wait for it (migration 015).
        var signalPending: Int?
        /// Every-target refresh requests (``Request/target`` nil) this target has answered: a version of
        /// it was trained (or diverged) since the request was started. The policy serves such a
        /// request once no other enabled target still owes it.
        var answered: Set<Int64> = []

        init(id: Int, name: String, enabled: Bool = true, settings: Settings, zval: Zval, scoringVersion: Int? = nil,
             currentInputsServed: Bool = false, divergedVersion: String? = nil, lastVersion: LastVersion? = nil,
             signalPending: Int? = nil, answered: Set<Int64> = []) {
            self.id = id
            self.name = name
            self.enabled = enabled
            self.settings = settings
            self.zval = zval
            self.scoringVersion = scoringVersion
            self.currentInputsServed = currentInputsServed
            self.divergedVersion = divergedVersion
            self.lastVersion = lastVersion
            self.signalPending = signalPending
            self.answered = answered
        }
    }

    var settings: Settings
    var readyRows: Int
    /// Rows waiting to be validated (new rows, model_version 0 jobs).
    var validatingRows: Int
    /// Requests not yet served, oldest first.
    var pendingRequests: [Request]
    var currentBase: Base?
    /// With no complete base model: why the newest one failed, if it did.
    var lastBaseFailure: String?
    /// A base model with exactly the wanted settings diverged before: its reason.
    var divergedBase: String?
    /// Why this host cannot train the wanted surrogate, or nil (``BaseModelConfig/memoryProblem(physicalMemory:)``).
    var memoryProblem: String?
    /// The stored θ0 named by `settings.theta0`; nil when the setting is null or no θ0 has that name.
    var theta0: ImportedTheta0?
    /// The targets of `settings.targets` that the database still has, in id order (a target added
    /// since the settings were read joins at the next read).
    var targets: [Target]
    var broken: [BrokenCheckpoint]
}
