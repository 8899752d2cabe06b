import Foundation

/// A Swift type a result column (text format) can be decoded into.
public protocol PQDecodable {
    static func decode(pqText bytes: ArraySlice<UInt8>) throws -> Self
}

func decodingError<T>(_ type: T.Type, _ bytes: ArraySlice<UInt8>) -> PQError {
    // The value itself is left out: it may be row data.
    PQError(.decoding, "cannot decode a \(bytes.count)-byte column value as \(T.self)")
}

extension PQDecodable where Self: LosslessStringConvertible {
    public static func decode(pqText bytes: ArraySlice<UInt8>) throws -> Self {
        guard let value = Self(String(decoding: bytes, as: UTF8.self)) else { throw decodingError(Self.self, bytes) }
        return value
    }
}

extension Int: PQDecodable {}
extension Int32: PQDecodable {}
extension Int64: PQDecodable {}
extension UInt8: PQDecodable {}

extension Double: PQDecodable {
    public static func decode(pqText bytes: ArraySlice<UInt8>) throws -> Double {
        switch String(decoding: bytes, as: UTF8.self) {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        case let text:
            guard let value = Double(text) else { throw decodingError(Double.self, bytes) }
            return value
        }
    }
}

extension Float: PQDecodable {
    public static func decode(pqText bytes: ArraySlice<UInt8>) throws -> Float {
        Float(try Double.decode(pqText: bytes))
    }
}

extension Bool: PQDecodable {
    public static func decode(pqText bytes: ArraySlice<UInt8>) throws -> Bool {
        switch bytes.first {
        case UInt8(ascii: "t"): return true
        case UInt8(ascii: "f"): return false
        default: throw decodingError(Bool.self, bytes)
        }
    }
}

extension String: PQDecodable {
    public static func decode(pqText bytes: ArraySlice<UInt8>) throws -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}

extension Date: PQDecodable {
    /// timestamptz in the server's default ISO output, e.g. `2026-11-23 23:18:11.822118+00`.
    public static func decode(pqText bytes: ArraySlice<UInt8>) throws -> Date {
        var text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: " ", with: "T")
        if let plus = text.lastIndex(where: { $0 == "+" || $0 == "-" }), text.distance(from: plus, to: text.endIndex) == 3 {
            text += ":00"
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = text.contains(".") ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        guard let date = formatter.date(from: text) else { throw decodingError(Date.self, bytes) }
        return date
    }
}

extension Array: PQDecodable where Element: PQArrayElement {
    /// `[UInt8]` decodes bytea hex output (`\x0a1b`); other element types decode a one-dimensional
    /// array literal (`{1,2,"a b"}`), where NULL elements are an error.
    public static func decode(pqText bytes: ArraySlice<UInt8>) throws -> [Element] {
        if Element.self == UInt8.self {
            // Not `as!`: a 17 MB checkpoint would be converted element by element through the
            // runtime's generic cast (seconds per model version). The types are the same.
            return unsafeBitCast(try byteaFromHex(bytes), to: [Element].self)
        }
        return try parseArrayLiteral(bytes).map { try Element.decode(pqText: $0[...]) }
    }

    static func parseArrayLiteral(_ bytes: ArraySlice<UInt8>) throws -> [[UInt8]] {
        guard bytes.first == UInt8(ascii: "{"), bytes.last == UInt8(ascii: "}") else { throw decodingError([Element].self, bytes) }
        let inner = bytes.dropFirst().dropLast()
        if inner.isEmpty { return [] }
        var elements: [[UInt8]] = []
        var current: [UInt8] = []
        var quoted = false, wasQuoted = false, escaped = false
        for b in inner {
            if escaped { current.append(b); escaped = false; continue }
            switch b {
            case UInt8(ascii: "\\") where quoted: escaped = true
            case UInt8(ascii: "\""): quoted.toggle(); wasQuoted = true
            case UInt8(ascii: ",") where !quoted:
                if !wasQuoted && current == [UInt8]("NULL".utf8) { throw PQError(.decoding, "array contains NULL; decode into a type that allows it") }
                elements.append(current)
                current = []
                wasQuoted = false
            default: current.append(b)
            }
        }
        if !wasQuoted && current == [UInt8]("NULL".utf8) { throw PQError(.decoding, "array contains NULL; decode into a type that allows it") }
        elements.append(current)
        return elements
    }
}

/// bytea's hex output (`\x0a1b`) as bytes. Outside the generic `Array` extension so it is compiled
/// for bytes, not through `Element`'s witnesses, and by table (a `switch` per digit cost 1.7 % of a
/// bootstrap's profile): checkpoints are tens of megabytes.
func byteaFromHex(_ bytes: ArraySlice<UInt8>) throws -> [UInt8] {
    guard bytes.count >= 2, bytes.first == UInt8(ascii: "\\"), bytes[bytes.startIndex + 1] == UInt8(ascii: "x"),
          bytes.count % 2 == 0 else { throw decodingError([UInt8].self, bytes) }
    let count = (bytes.count - 2) / 2
    var invalid: UInt8 = 0
    let out = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        bytes.withUnsafeBufferPointer { hex in
            hexDigitValues.withUnsafeBufferPointer { value in
                for i in 0..<count {
                    let high = value[Int(hex[2 + 2 * i])], low = value[Int(hex[3 + 2 * i])]
                    invalid |= (high | low) & 0x10
                    buffer[i] = high << 4 | (low & 0x0F)
                }
            }
        }
        initialized = count
    }
    guard invalid == 0 else { throw decodingError([UInt8].self, bytes) }
    return out
}

/// Each byte's value as a hex digit; 0x10 marks a byte that is not one.
private let hexDigitValues: [UInt8] = (0...255).map { c -> UInt8 in
    switch UInt8(c) {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt8(c) - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt8(c) - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt8(c) - UInt8(ascii: "A") + 10
    default: return 0x10
    }
}
