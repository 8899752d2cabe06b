/// A JSON number kept as the text it was written with.
///
/// `meta` values go from a JSONL file into PostgreSQL's `jsonb`, whose numbers are `numeric`: exact,
/// with no Int64 or Double range. Parsing them into `Int64` or `Double` on the way would alter them
/// silently (`18446744073709551615` became `18446744073709552000`, `1e-400` became `0`), so the text
/// travels unchanged and only a reader that wants a Swift number converts it, knowingly.
///
/// Two numbers are equal when they are spelled the same (`1.0` ≠ `1`, as `Hashable` must be cheap and exact).
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The number as written: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` (RFC 8259 §6).
    public let text: String

    /// Nil unless `text` is a JSON number.
    public init?(_ text: String) {
        guard Self.isValid(text.utf8) else { return nil }
        self.text = text
    }

    /// Text the parser has already checked.
    init(validated text: String) { self.text = text }

    public init(_ value: Int64) { text = String(value) }

    /// - Important: `value` must be finite; JSON has no spelling for infinity or NaN
    ///   (``JSONValue/double(_:)`` maps those to `null`).
    public init(_ value: Double) {
        precondition(value.isFinite, "JSON has no spelling for \(value)")
        // Swift prints the shortest text that reads back as the same Double ("0.1", "1e-05"), which is
        // a JSON number.
        text = "\(value)"
    }

    public var description: String { text }

    /// The value as an Int64, if it is an integer written without fraction or exponent that fits.
    public var int64Value: Int64? { Int64(text) }

    /// The nearest Double (rounds; ±infinity or 0 when out of Double's range).
    public var doubleValue: Double { Double(text) ?? .nan }

    /// Digits before the decimal point, digits after it and the exponent, as PostgreSQL's `numeric`
    /// limits are written in them.
    public var shape: (integerDigits: Int, fractionDigits: Int, exponent: Int?) {
        var integerDigits = 0, fractionDigits = 0
        var exponentText = ""
        var part = 0  // 0: integer, 1: fraction, 2: exponent
        for c in text.utf8 {
            switch c {
            case UInt8(ascii: "."): part = 1
            case UInt8(ascii: "e"), UInt8(ascii: "E"): part = 2
            case UInt8(ascii: "0")...UInt8(ascii: "9") where part == 0: integerDigits += 1
            case UInt8(ascii: "0")...UInt8(ascii: "9") where part == 1: fractionDigits += 1
            default: if part == 2 { exponentText.append(Character(Unicode.Scalar(c))) }
            }
        }
        // An exponent too long for Int is out of every range; Int.max/min say so.
        let exponent = part == 2 ? (Int(exponentText) ?? (exponentText.hasPrefix("-") ? Int.min : Int.max)) : nil
        return (integerDigits, fractionDigits, exponent)
    }

    /// RFC 8259 §6 number grammar, on the whole of `bytes`.
    static func isValid(_ bytes: String.UTF8View) -> Bool {
        let bytes = Array(bytes)[...]
        return scan(bytes, from: bytes.startIndex) == bytes.endIndex
    }

    /// The end of the longest number that starts at `i`, or nil if none does (RFC 8259 §6:
    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
    static func scan(_ bytes: ArraySlice<UInt8>, from start: Int) -> Int? {
        var i = start
        func peek() -> UInt8? { i < bytes.endIndex ? bytes[i] : nil }
        func digits() -> Int {
            let from = i
            while let b = peek(), b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") { i += 1 }
            return i - from
        }
        if peek() == UInt8(ascii: "-") { i += 1 }
        if peek() == UInt8(ascii: "0") {
            i += 1  // no leading zeros: "01" is "0" followed by junk
        } else if digits() == 0 {
            return nil
        }
        if peek() == UInt8(ascii: ".") {
            i += 1
            if digits() == 0 { return nil }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            i += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { i += 1 }
            if digits() == 0 { return nil }
        }
        return i
    }
}
