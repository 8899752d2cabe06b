/// A JSON value, used for the free-form `meta` column of a row.
///
/// Numbers keep the text they were written with (``JSONNumber``), so `meta` reaches `jsonb` with the
/// values the file holds, whatever their size or precision. ``parse(_:maxDepth:)`` reads one value and
/// ``write(to:)`` writes it back with every number as it was read.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// An integer value (ids, counts).
    public static func int(_ value: Int64) -> JSONValue { .number(JSONNumber(value)) }

    /// A floating-point value; non-finite values have no JSON spelling and become `null`, which keeps
    /// the row writable.
    public static func double(_ value: Double) -> JSONValue { value.isFinite ? .number(JSONNumber(value)) : .null }

    /// The string payload, if this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The members, if this is an object.
    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }
}

/// Through Foundation's coders a number is an Int64, a UInt64 or a Double: exact for numbers made in
/// Swift (`.int`, `.double`), but not for every number a file may hold. Files are read with
/// ``JSONValue/parse(_:maxDepth:)`` and written with ``JSONValue/write(to:)``, which keep the text.
extension JSONValue: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let u = try? c.decode(UInt64.self) { self = .number(JSONNumber(validated: String(u))); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        if let o = try? c.decode([String: JSONValue].self) { self = .object(o); return }
        throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value")
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            if let i = n.int64Value { try c.encode(i) } else if let u = UInt64(n.text) { try c.encode(u) }
            else if n.doubleValue.isFinite { try c.encode(n.doubleValue) } else { try c.encodeNil() }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}
