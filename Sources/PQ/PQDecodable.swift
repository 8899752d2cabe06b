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
            return try decodeByteaHex(bytes) as! [Element]
        }
        return try parseArrayLiteral(bytes).map { try Element.decode(pqText: $0[...]) }
    }

    static func decodeByteaHex(_ bytes: ArraySlice<UInt8>) throws -> [UInt8] {
        guard bytes.count >= 2, bytes.first == UInt8(ascii: "\\"), bytes[bytes.startIndex + 1] == UInt8(ascii: "x"),
              bytes.count % 2 == 0 else { throw decodingError([UInt8].self, bytes) }
        func nibble(_ c: UInt8) throws -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: throw decodingError([UInt8].self, bytes)
            }
        }
        var out = [UInt8]()
        out.reserveCapacity((bytes.count - 2) / 2)
        var i = bytes.startIndex + 2
        while i < bytes.endIndex {
            out.append(try nibble(bytes[i]) << 4 | nibble(bytes[i + 1]))
            i += 2
        }
        return out
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
