import Foundation

/// A Swift value that can be bound as a query parameter (`$1`, `$2`, ...).
///
/// Values travel in PostgreSQL's text format, except `[UInt8]`, which is sent binary as bytea. Arrays
/// of numbers and strings become array literals (`{1,2,3}`), for `= ANY($1::bigint[])` and `unnest`.
public protocol PQValue: Sendable {
    /// The parameter's bytes and whether they are in binary format.
    var pqParameter: (bytes: [UInt8], binary: Bool) { get }
}

/// A value that can appear inside an array parameter or result.
public protocol PQArrayElement: PQValue, PQDecodable {
    /// The element as it appears between the braces of an array literal.
    var pqArrayLiteral: String { get }
}

extension PQValue where Self: LosslessStringConvertible {
    public var pqParameter: (bytes: [UInt8], binary: Bool) { (Array(description.utf8), false) }
}

extension Int: PQArrayElement { public var pqArrayLiteral: String { description } }
extension Int32: PQArrayElement { public var pqArrayLiteral: String { description } }
extension Int64: PQArrayElement { public var pqArrayLiteral: String { description } }
extension Bool: PQValue {
    public var pqParameter: (bytes: [UInt8], binary: Bool) { (self ? [UInt8(ascii: "t")] : [UInt8(ascii: "f")], false) }
}

extension Double: PQArrayElement {
    /// Swift prints the shortest text that reads back to the same bits; PostgreSQL spells the
    /// specials `NaN`, `Infinity` and `-Infinity`.
    public var pqParameter: (bytes: [UInt8], binary: Bool) { (Array(pqArrayLiteral.utf8), false) }
    public var pqArrayLiteral: String {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return description
    }
}

extension Float: PQArrayElement {
    public var pqParameter: (bytes: [UInt8], binary: Bool) { (Array(pqArrayLiteral.utf8), false) }
    public var pqArrayLiteral: String {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return description
    }
}

extension String: PQArrayElement {
    public var pqParameter: (bytes: [UInt8], binary: Bool) { (Array(utf8), false) }
    /// Quoted, with `"` and `\` escaped, so commas, braces and the word NULL stay text.
    public var pqArrayLiteral: String {
        var out = "\""
        for c in unicodeScalars {
            if c == "\"" || c == "\\" { out.unicodeScalars.append("\\") }
            out.unicodeScalars.append(c)
        }
        return out + "\""
    }
}

extension UInt8: PQArrayElement {
    public var pqParameter: (bytes: [UInt8], binary: Bool) { (Array(description.utf8), false) }
    public var pqArrayLiteral: String { description }
}

extension Array: PQValue where Element: PQArrayElement {
    /// `[UInt8]` is bytea (binary); any other element type makes an array literal.
    public var pqParameter: (bytes: [UInt8], binary: Bool) {
        // By element type, not `as?`: an empty [Int64] casts to [UInt8] too, and would go out as an
        // empty bytea where the server expects an array; and the runtime's cast copies element by
        // element (17 MB checkpoints), where the bit cast of the same type copies nothing.
        if Element.self == UInt8.self { return (unsafeBitCast(self, to: [UInt8].self), true) }
        return ([UInt8](("{" + map(\.pqArrayLiteral).joined(separator: ",") + "}").utf8), false)
    }
}

extension Date: PQValue {
    /// ISO 8601 with microseconds, in UTC.
    public var pqParameter: (bytes: [UInt8], binary: Bool) {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return (Array(formatter.string(from: self).utf8), false)
    }
}
