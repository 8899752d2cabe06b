extension JSONValue {
    /// Why bytes are not one JSON value. `reason` never quotes the input, so it is safe to log.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        /// Byte offset into the input where parsing stopped.
        public var offset: Int
        public var reason: String
        public var description: String { "\(reason) at byte \(offset)" }
    }

    /// Parses exactly one JSON value (RFC 8259), with whitespace around it allowed.
    ///
    /// Strict like Foundation's `JSONDecoder`: no comments, trailing commas, leading zeros, unescaped
    /// control characters or lone UTF-16 surrogates; strings must be valid UTF-8. A repeated object
    /// key keeps its last value, as PostgreSQL's `jsonb` does. Numbers keep their text (``JSONNumber``).
    ///
    /// - Parameter maxDepth: deepest `[`/`{` nesting accepted; deeper input is an error before it
    ///   costs stack.
    public static func parse(_ bytes: ArraySlice<UInt8>, maxDepth: Int = 64) throws(ParseError) -> JSONValue {
        var parser = Parser(bytes: bytes, maxDepth: maxDepth)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.i == bytes.endIndex else { throw parser.error("unexpected bytes after the value") }
        return value
    }

    /// The parser: one pass over the bytes, a function per grammar rule, recursion bounded by `maxDepth`.
    struct Parser {
        let bytes: ArraySlice<UInt8>
        let maxDepth: Int
        var i: Int

        init(bytes: ArraySlice<UInt8>, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
            i = bytes.startIndex
        }

        func error(_ reason: String) -> ParseError { ParseError(offset: i - bytes.startIndex, reason: reason) }

        func peek() -> UInt8? { i < bytes.endIndex ? bytes[i] : nil }

        mutating func skipSpace() {
            while let b = peek(), b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { i += 1 }
        }

        mutating func expect(_ literal: StaticString) throws(ParseError) {
            let n = literal.utf8CodeUnitCount
            guard bytes.endIndex - i >= n,
                  literal.withUTF8Buffer({ bytes[i..<i + n].elementsEqual($0) }) else { throw error("invalid literal") }
            i += n
        }

        mutating func value(depth: Int) throws(ParseError) -> JSONValue {
            guard let b = peek() else { throw error("unexpected end of input") }
            switch b {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            default:
                guard let end = JSONNumber.scan(bytes, from: i) else { throw error("invalid value") }
                let text = String(decoding: bytes[i..<end], as: UTF8.self)
                i = end
                return .number(JSONNumber(validated: text))
            }
        }

        mutating func object(depth: Int) throws(ParseError) -> JSONValue {
            guard depth <= maxDepth else { throw error("nested deeper than \(maxDepth) levels") }
            i += 1  // {
            var members: [String: JSONValue] = [:]
            skipSpace()
            if peek() == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skipSpace()
                guard peek() == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try string()
                skipSpace()
                guard peek() == UInt8(ascii: ":") else { throw error("expected ':'") }
                i += 1
                skipSpace()
                members[key] = try value(depth: depth)
                skipSpace()
                switch peek() {
                case UInt8(ascii: ","): i += 1
                case UInt8(ascii: "}"): i += 1; return .object(members)
                default: throw error("expected ',' or '}'")
                }
            }
        }

        mutating func array(depth: Int) throws(ParseError) -> JSONValue {
            guard depth <= maxDepth else { throw error("nested deeper than \(maxDepth) levels") }
            i += 1  // [
            var items: [JSONValue] = []
            skipSpace()
            if peek() == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try value(depth: depth))
                skipSpace()
                switch peek() {
                case UInt8(ascii: ","): i += 1
                case UInt8(ascii: "]"): i += 1; return .array(items)
                default: throw error("expected ',' or ']'")
                }
            }
        }

        /// A string from its opening quote to past its closing one. Runs without escapes are copied
        /// as they are; the whole is checked to be UTF-8 once.
        mutating func string() throws(ParseError) -> String {
            i += 1  // "
            var utf8: [UInt8] = []
            var runStart = i
            while true {
                guard let b = peek() else { throw error("unterminated string") }
                switch b {
                case UInt8(ascii: "\""):
                    utf8 += bytes[runStart..<i]
                    i += 1
                    guard let s = String(validating: utf8, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
                    return s
                case UInt8(ascii: "\\"):
                    utf8 += bytes[runStart..<i]
                    i += 1
                    try escape(into: &utf8)
                    runStart = i
                case 0x00..<0x20:
                    throw error("unescaped control character in a string")
                default:
                    i += 1
                }
            }
        }

        /// One escape after its backslash, appended as UTF-8.
        mutating func escape(into utf8: inout [UInt8]) throws(ParseError) {
            guard let b = peek() else { throw error("unterminated string") }
            i += 1
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(b)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by an escaped low one (UTF-16 pair).
                    guard bytes.endIndex - i >= 2, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw error("lone UTF-16 surrogate in \\u escape")
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("lone UTF-16 surrogate in \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw error("lone UTF-16 surrogate in \\u escape")
                }
                utf8 += Array(String(Character(Unicode.Scalar(scalar)!)).utf8)
            default:
                throw error("invalid escape in a string")
            }
        }

        mutating func hex4() throws(ParseError) -> UInt32 {
            guard bytes.endIndex - i >= 4 else { throw error("short \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let b = bytes[i]
                let digit: UInt8
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
                default: throw error("invalid \\u escape")
                }
                value = value << 4 | UInt32(digit)
                i += 1
            }
            return value
        }
    }
}
