import Foundation
import Testing
@testable import JSONL

/// The JSON layer under `tovd import`: what it accepts, and that numbers keep their text.
@Suite struct JSONValueTests {
    func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8)[...]) }

    /// Defect 10: numbers beyond Int64 or Double went through Double (18446744073709551615 became
    /// 18446744073709552000, 1e-400 became 0). Each must come out as it went in.
    @Test func numbersKeepTheirText() throws {
        let numbers = ["18446744073709551615", "-9223372036854775809", "1e-400", "1E+400", "0.1000000000000000055511151231257827",
                       "123456789012345678901234567890.000000000000000000001", "-0", "0", "2.50", "5e-324", "-1.5e-07"]
        for text in numbers {
            let value = try parse(#"{"n": \#(text)}"#)
            #expect(value == .object(["n": .number(JSONNumber(text)!)]), "\(text)")
            #expect(value.jsonText == #"{"n":\#(text)}"#)
        }
        // Through the reader, as `tovd import` reads a line.
        let line = #"{"prompt": "p", "response": "r", "big": 18446744073709551615, "meta": {"tiny": 1e-400}}"#
        let row = try #require(Array(JSONLReader(data: Data(line.utf8))).first).get()
        #expect(row.meta?["big"] == .number(JSONNumber("18446744073709551615")!))
        #expect(row.meta?["tiny"] == .number(JSONNumber("1e-400")!))
        #expect(JSONValue.object(row.meta!).jsonText == #"{"big":18446744073709551615,"tiny":1e-400}"#)
    }

    @Test func numbersMadeInSwift() {
        #expect(JSONValue.int(-3).jsonText == "-3")
        #expect(JSONValue.double(0.1).jsonText == "0.1")
        #expect(JSONValue.double(1e-5).jsonText == "1e-05")
        #expect(JSONValue.double(.infinity) == .null)
        #expect(JSONNumber("18446744073709551615")?.int64Value == nil)
        #expect(JSONNumber("-42")?.int64Value == -42)
        #expect(JSONNumber("1e-400")?.doubleValue == 0)
    }

    /// The grammar of RFC 8259, as strict as Foundation's JSONDecoder was.
    @Test func rejectsWhatIsNotJSON() {
        let bad = ["", "{", "{\"a\" 1}", "{\"a\": 1,}", "[1,]", "01", "1.", ".5", "+1", "-", "1e", "1e+", "NaN", "Infinity",
                   "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
                   "\"a\u{01}b\"", "{\"a\": 1} x", "{a: 1}", "'a'", "[1 2]", "// c\n1"]
        for text in bad {
            #expect(throws: JSONValue.ParseError.self, "\(text.debugDescription)") { try parse(text) }
        }
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse([0x22, 0xFF, 0x22][...]) }
    }

    @Test func acceptsWhatIsJSON() throws {
        #expect(try parse(" \t\r\n{ } ") == .object([:]))
        #expect(try parse("[]") == .array([]))
        #expect(try parse("[true,false,null,\"\",0]") == .array([.bool(true), .bool(false), .null, .string(""), .int(0)]))
        #expect(try parse(#""\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\u0000""#) == .string("\"\\/\u{08}\u{0C}\n\r\té😀\u{00}"))
        #expect(try parse("\"é😀\"") == .string("é😀"))
        // A repeated key keeps its last value, as jsonb does.
        #expect(try parse(#"{"a": 1, "a": 2}"#) == .object(["a": .int(2)]))
    }

    @Test func depthIsBounded() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try parse(ok) != .null)
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONValue.ParseError.self) { try parse(deep) }
    }

    /// What is written parses back to the same value; strings escape only what JSON requires.
    @Test func writeThenParseIsIdentity() throws {
        let value = JSONValue.object([
            "z": .array([.string("tab\there \"q\" \\ \u{01} é 😀 /"), .number(JSONNumber("1e-400")!), .null]),
            "a": .object(["n": .int(7), "b": .bool(false)]),
        ])
        #expect(value.jsonText == #"{"a":{"b":false,"n":7},"z":["tab\there \"q\" \\ \u0001 é 😀 /",1e-400,null]}"#)
        #expect(try parse(value.jsonText) == value)
    }

    /// Foundation's coders still work for values made in Swift (the evaluation's files).
    @Test func codableRoundTripOfSwiftNumbers() throws {
        let value = JSONValue.object(["i": .int(Int64.max), "d": .double(0.25), "u": .number(JSONNumber("18446744073709551615")!)])
        let back = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
        #expect(back == value)
    }
}
