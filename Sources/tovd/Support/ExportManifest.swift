import Foundation
import JSONL
import Surrogate

/// What `tovd export --manifest PATH` writes beside an export, so a training run can say exactly
/// which rows it used, and `tovd export --as-of PATH` can write them again after the selection moved
/// on (docs/operations.md, "Reproducible exports").
///
/// The file is one JSON object, compact with keys sorted (``JSONValue/write(to:)``): that is the
/// canonical form `settings_sha256` hashes (the `settings` value exactly as it appears in the file).
struct ExportManifest: Equatable {
    /// Bumped when a field changes meaning; `--as-of` refuses a manifest of another version.
    static let formatVersion: Int64 = 1

    var target: String
    /// The target's id: history is kept by id, so a manifest of a dropped target (or of one dropped
    /// and added again under the same name) still finds its own rows.
    var targetID: Int64
    var selectionVersion: Int64
    var modelVersion: Int64?
    var baseVersion: Int64?
    /// An imported θ0's name, "bootstrap", or nil before the first model version.
    var theta0: String?
    /// {"base": …, "model": …, "selection": …} as the database recorded them (TransferQueries.manifestGet).
    var settings: JSONValue
    var tovdVersion: String
    /// SHA-256 of the tovd executable that wrote the export: identifies the build even between versions.
    var tovdSHA256: String?
    var schemaVersion: Int64
    /// The selected ids, ascending, and how many were selected by score, drawn at random and drawn by
    /// n-gram importance (score_dsir).
    var ids: [Int64]
    var scoreRows: Int64
    var randomRows: Int64
    var importanceRows: Int64
    var zvalVersion: Int64
    var zvalRows: Int64
    /// Z_val rows written after the selected ones (`--with-validation`), nil when not exported.
    var validationRowsWritten: Int64?
    var exportedAt: String

    /// SHA-256 of the ids, ascending, each as decimal digits followed by a newline:
    /// `jq -r '.rows.ids[]' M | sha256sum` gives the same.
    static func idsSHA256(_ ids: [Int64]) -> String {
        var hash = SHA256()
        for id in ids { hash.update(Array("\(id)\n".utf8)) }
        return hash.hexDigest()
    }

    static func canonical(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        value.write(to: &out)
        return out
    }

    var settingsSHA256: String { SHA256.hexDigest(of: Data(Self.canonical(settings))) }

    var json: JSONValue {
        func optional(_ x: Int64?) -> JSONValue { x.map(JSONValue.int) ?? .null }
        return .object([
            "manifest_version": .int(Self.formatVersion),
            "target": .string(target),
            "target_id": .int(targetID),
            "selection_version": .int(selectionVersion),
            "model_version": optional(modelVersion),
            "base_version": optional(baseVersion),
            "theta0": theta0.map(JSONValue.string) ?? .null,
            "settings": settings,
            "settings_sha256": .string(settingsSHA256),
            "tovd_version": .string(tovdVersion),
            "tovd_sha256": tovdSHA256.map(JSONValue.string) ?? .null,
            "schema_version": .int(schemaVersion),
            "rows": .object([
                "count": .int(Int64(ids.count)),
                "score": .int(scoreRows),
                "random": .int(randomRows),
                "importance": .int(importanceRows),
                "ids": .array(ids.map(JSONValue.int)),
                "ids_sha256": .string(Self.idsSHA256(ids)),
            ]),
            "zval_version": .int(zvalVersion),
            "zval_rows": .int(zvalRows),
            "validation_rows_written": optional(validationRowsWritten),
            "exported_at": .string(exportedAt),
        ])
    }

    func write(to path: String) throws {
        var bytes = Self.canonical(json)
        bytes.append(0x0A)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw CLIError("cannot write the manifest \(path): check the directory exists and is writable")
        }
    }

    /// What `--as-of` needs of a manifest, checked against itself: a manifest whose ids do not hash
    /// to its own `ids_sha256` was edited or cut short, and reproduces nothing.
    struct AsOf {
        var target: String
        var targetID: Int64
        var selectionVersion: Int64
        var ids: [Int64]
        var idsSHA256: String
    }

    static func readAsOf(_ path: String) throws -> AsOf {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read the manifest \(path): check the path") }
        func bad(_ what: String) -> CLIError {
            CLIError("\(path) is not a manifest tovd export can reproduce: \(what) (write one with `tovd export --manifest PATH`)")
        }
        let value: JSONValue
        do { value = try JSONValue.parse(ArraySlice(data)) } catch { throw bad("\(error)") }
        guard let object = value.objectValue else { throw bad("not a JSON object") }
        func int(_ key: String, in o: [String: JSONValue]) throws -> Int64 {
            guard case .number(let n)? = o[key], let x = n.int64Value else { throw bad("\"\(key)\" is missing or not an integer") }
            return x
        }
        guard try int("manifest_version", in: object) == formatVersion else {
            throw bad("manifest_version is not \(formatVersion); use the tovd that wrote it")
        }
        guard let target = object["target"]?.stringValue else { throw bad("\"target\" is missing") }
        guard let rows = object["rows"]?.objectValue, case .array(let idValues)? = rows["ids"], let hash = rows["ids_sha256"]?.stringValue
        else { throw bad("\"rows\" with \"ids\" and \"ids_sha256\" is missing") }
        let ids = try idValues.map { v -> Int64 in
            guard case .number(let n) = v, let id = n.int64Value else { throw bad("an id is not an integer") }
            return id
        }
        guard ids == ids.sorted(), Set(ids).count == ids.count else { throw bad("its ids are not strictly ascending") }
        guard try int("count", in: rows) == ids.count, idsSHA256(ids) == hash else {
            throw bad("its ids do not match its own count and ids_sha256: the file was edited or cut short")
        }
        return AsOf(target: target, targetID: try int("target_id", in: object), selectionVersion: try int("selection_version", in: object),
                    ids: ids, idsSHA256: hash)
    }

    /// SHA-256 of this executable, or nil if it cannot be read.
    static func executableSHA256() -> String? {
        try? SHA256.hexDigest(ofFile: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath())
    }
}
