import Foundation

/// A target of the pool (a row of `tov.targets`): its Z_val is `tov.validation` rows with its name,
/// and it has its own θ_val trajectory, scores, selection and history on the shared base model.
///
/// ``settings`` is what everything per target reads: the global settings with the target's own
/// values applied. Only the keys of ``Settings/targetKeys`` can differ between targets; whatever
/// shapes the base model is the global value for all of them.
public struct TargetSettings: Equatable, Sendable {
    public var id: Int
    public var name: String
    /// A disabled target keeps its selection and scores but trains nothing new: its refreshes wait.
    public var enabled: Bool
    public var settings: Settings

    public init(id: Int, name: String, enabled: Bool = true, settings: Settings) {
        self.id = id
        self.name = name
        self.enabled = enabled
        self.settings = settings
    }
}

/// One row of `tov.targets` as the daemon reads it: its own settings as jsonb prints each value.
public struct TargetRow: Equatable, Sendable {
    public var id: Int
    public var name: String
    public var enabled: Bool
    /// (key, value as jsonb text), in key order.
    public var settings: [(String, String)]

    public init(id: Int, name: String, enabled: Bool, settings: [(String, String)]) {
        self.id = id
        self.name = name
        self.enabled = enabled
        self.settings = settings
    }

    public static func == (a: TargetRow, b: TargetRow) -> Bool {
        a.id == b.id && a.name == b.name && a.enabled == b.enabled && a.settings.elementsEqual(b.settings, by: { $0 == $1 })
    }
}

extension Settings {
    /// The keys a target may set for itself (`tov.target_setting_keys()` in the database says the same).
    public static let targetKeys: Set<String> = ["budget", "policy", "bins", "score_fn", "val_lr_ratio", "zval_debounce_seconds", "score_share"]

    /// The name of the target a database of schema version 9 or older becomes, and of the one target
    /// `tov.selected` and `tov.status` describe.
    public static let defaultTarget = "default"

    /// The target named `name`, if there is one.
    public func target(named name: String) -> TargetSettings? { targets.first { $0.name == name } }

    /// The targets the trainer trains and the keeper keeps current, in id order.
    public var enabledTargets: [TargetSettings] { targets.filter(\.enabled) }
}
