import Foundation
import Testing
import Selection
@testable import JSONL

@Suite struct JSONLReaderTests {
    func read(_ text: String) -> [JSONLReader.Element] { Array(JSONLReader(data: Data(text.utf8))) }

    @Test func goodAndBadLines() throws {
        let text = """
        {"prompt": "p1", "response": "r1"}

        {"prompt": "p2", "response": "r2", "source": "s", "meta": {"k": 1}, "extra": true}
        {not json
        {"prompt": "p3"}
        {"prompt": 3, "response": "x"}
        {"prompt": "p", "response": ""}
        [1, 2]
        {"prompt": "p4", "response": "r4"}
        """
        let rows = read(text)
        #expect(rows.count == 8)
        #expect(try rows[0].get() == JSONLExample(prompt: "p1", response: "r1"))
        #expect(try rows[1].get() == JSONLExample(prompt: "p2", response: "r2", source: "s", meta: ["k": .int(1), "extra": .bool(true)]))
        let errors = rows.compactMap { if case .failure(let e) = $0 { return e } else { return nil } }
        #expect(errors.map(\.line) == [4, 5, 6, 7, 8])
        #expect(errors[0].reason == "invalid JSON")
        #expect(errors[1].reason == "missing \"response\"")
        #expect(errors[2].reason == "\"prompt\" is not a string")
        #expect(errors[3].reason == "empty response")
        #expect(errors[4].reason.hasPrefix("not a JSON object"))
        #expect(try rows[7].get().prompt == "p4")
    }

    @Test func deeplyNestedOrHugeMetaIsAnErrorNotACrash() throws {
        let deep = #"{"prompt": "p", "response": "r", "meta": "# + String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000) + "}"
        let huge = #"{"prompt": "p", "response": "r", "meta": {"blob": ""# + String(repeating: "x", count: 8 << 20) + #""}}"#
        let rows = read(deep + "\n" + huge + "\n" + #"{"prompt": "p", "response": "r"}"#)
        #expect(rows.count == 3)
        guard case .failure(let error) = rows[0] else { Issue.record("deep nesting was accepted"); return }
        #expect(error.reason.contains("nested deeper than 64"))
        #expect(try rows[1].get().meta?["blob"] != nil)
        #expect(try rows[2].get().prompt == "p")
    }

    @Test func messagesFormat() throws {
        let line = #"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Ciao"}], "id": 9}"#
        let row = try #require(read(line).first).get()
        #expect(row.prompt == "system: Be brief.\nuser: Hi\nassistant: Hello\nuser: Bye\n")
        #expect(row.response == "Ciao")
        #expect(row.meta == ["id": .int(9)])
        let bad = read(#"{"messages": [{"role": "user", "content": "Hi"}]}"# + "\n" + #"{"messages": [{"role": "user"}]}"# + "\n" + #"{"messages": "x"}"#)
        #expect(bad.map { if case .failure(let e) = $0 { return e.reason } else { return "" } }
                == ["\"messages\" has no assistant turn", "messages[0].content missing or not a string", "\"messages\" is not an array"])
    }

    @Test func invalidUTF8CRLFAndBOM() {
        var bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array(#"{"prompt": "a", "response": "b"}"#.utf8) + [0x0D, 0x0A]
        bytes += Array(#"{"prompt": "\#u{00}"#.utf8) + [0xFF, 0xFE] + Array(#"", "response": "b"}"#.utf8) + [0x0A]
        bytes += Array(#"{"prompt": "c", "response": "d"}"#.utf8)
        let rows = Array(JSONLReader(data: Data(bytes)))
        #expect(rows.count == 3)
        #expect((try? rows[0].get()) == JSONLExample(prompt: "a", response: "b"))
        #expect(rows[1] == .failure(JSONLLineError(line: 2, reason: "invalid UTF-8")))
        #expect((try? rows[2].get()) == JSONLExample(prompt: "c", response: "d"))
    }

    @Test func deepNestingAndLongLines() throws {
        let deep = #"{"prompt": "a", "response": "b", "x": "# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        let deepRows = read(deep)
        #expect(deepRows.count == 1)
        if case .failure(let e) = deepRows[0] { #expect(e.reason.contains("nested deeper")) } else { Issue.record("deep line accepted") }

        // Over-long lines are dropped while streaming from a file, then reading goes on.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tovd-jsonl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("long.jsonl")
        let long = #"{"prompt": ""# + String(repeating: "x", count: 300_000) + #"", "response": "r"}"#
        try Data((long + "\n" + #"{"prompt": "ok", "response": "r"}"# + "\n" + long).utf8).write(to: file)
        var reader = try JSONLReader(url: file)
        reader.maxLineBytes = 100_000
        reader.chunkBytes = 4096
        let rows = Array(reader)
        #expect(rows.count == 3)
        #expect(rows[0] == .failure(JSONLLineError(line: 1, reason: "line longer than 100000 bytes")))
        #expect((try? rows[1].get())?.prompt == "ok")
        #expect(rows[2] == .failure(JSONLLineError(line: 3, reason: "line longer than 100000 bytes")))
        // With the default limit the same file reads fine in small chunks.
        var relaxed = try JSONLReader(url: file)
        relaxed.chunkBytes = 1000
        #expect(Array(relaxed).filter { (try? $0.get()) != nil }.count == 3)
    }

    @Test func missingFileThrows() {
        #expect(throws: (any Error).self) { try JSONLReader(url: URL(fileURLWithPath: "/nonexistent-\(UUID()).jsonl")) }
    }

    /// Seeded fuzz: ≥ 100k random and mutated lines; the reader must never crash and must account for each line.
    @Test func fuzz() {
        var rng = SplitMix64(seed: 0x70D)
        let seeds: [[UInt8]] = [
            #"{"prompt": "p", "response": "r"}"#, #"{"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}"#,
            #"{"prompt": "p", "response": "r", "meta": {"a": [1, 2.5, null, true, {"b": "c"}]}, "source": "s"}"#,
            #"{"prompt": "\u00e9\ud83d\ude00", "response": "\n\t\"x\""}"#, "{}", "[]", "null", #"{"prompt": 1e999, "response": -0}"#,
        ].map { Array($0.utf8) }
        let alphabet = Array(#"{}[]":,\ 0123456789.eE+-truefalsnul"promptresponsemessagesrolecontent"#.utf8) + [0x00, 0x0D, 0xC3, 0xA9, 0xFF, 0xED, 0xA0, 0x80]
        var data: [UInt8] = []
        var lines = 0
        while lines < 100_000 {
            var line: [UInt8]
            if rng.next() % 4 == 0 {
                line = (0..<Int(rng.next() % 80)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            } else {
                line = seeds[Int(rng.next() % UInt64(seeds.count))]
                for _ in 0..<Int(rng.next() % 4) where !line.isEmpty {
                    let i = Int(rng.next() % UInt64(line.count))
                    switch rng.next() % 4 {
                    case 0: line[i] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                    case 1: line.remove(at: i)
                    case 2: line.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: i)
                    default: line += line[i...].prefix(10)
                    }
                }
            }
            line.removeAll { $0 == 0x0A }
            data += line
            data.append(0x0A)
            lines += 1
        }
        var ok = 0, bad = 0, lastLine = 0
        for row in JSONLReader(data: Data(data)) {
            switch row {
            case .success: ok += 1
            case .failure(let e):
                bad += 1
                #expect(e.line > lastLine && e.line <= lines)
                lastLine = e.line
            }
        }
        #expect(ok > 10_000)
        #expect(bad > 10_000)
        #expect(ok + bad <= lines)
    }
}
