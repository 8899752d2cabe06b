import Foundation

/// Streams a JSONL file as ``JSONLExample``s, one line at a time, never holding more than one line.
///
/// Each non-blank line yields either an example or a ``JSONLLineError`` with its 1-based line number;
/// bad lines never stop the stream. Two row shapes are accepted:
/// - `{"prompt": "...", "response": "...", "source"?: "...", "meta"?: {...}}`
/// - `{"messages": [{"role": "...", "content": "..."}, ...]}`: the response is the content of the last
///   `assistant` turn, the prompt is every turn before it rendered as `"role: content\n"`.
///
/// Any other top-level key goes into `meta` (an explicit `meta` object wins on a name clash).
/// Lines longer than ``maxLineBytes`` are skipped without being buffered; nesting deeper than
/// ``maxDepth`` is refused before the JSON parser sees it, so no input can exhaust the stack.
///
/// ```swift
/// for case .success(let row) in try JSONLReader(url: file) { ... }
/// ```
public struct JSONLReader: Sequence {
    public typealias Element = Result<JSONLExample, JSONLLineError>

    enum Input {
        case file(URL)
        case bytes(Data)
    }

    let input: Input
    /// Longest accepted line in bytes (without the newline); longer lines become errors.
    public var maxLineBytes: Int = 16 << 20
    /// Deepest accepted `[`/`{` nesting of a line.
    public var maxDepth: Int = 64
    /// Bytes read from the file per `read` call.
    public var chunkBytes: Int = 1 << 20

    /// Reads the file at `url`.
    /// - Throws: `CocoaError(.fileReadNoSuchFile)` if it does not exist or cannot be read.
    public init(url: URL) throws {
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: url.path])
        }
        self.input = .file(url)
    }

    /// Reads JSONL held in memory (tests, stdin that was read whole).
    public init(data: Data) {
        self.input = .bytes(data)
    }

    public func makeIterator() -> Iterator {
        Iterator(reader: self)
    }

    /// Parses one line (without its newline). Returns nil for a blank line.
    /// Exposed so callers with their own line source (e.g. stdin) get identical rules.
    public func parse(line bytes: ArraySlice<UInt8>, number: Int) -> Element? {
        var lo = bytes.startIndex
        var hi = bytes.endIndex
        // A UTF-8 byte-order mark is legal at the very start of a file.
        if number == 1, hi - lo >= 3, bytes[lo] == 0xEF, bytes[lo + 1] == 0xBB, bytes[lo + 2] == 0xBF { lo += 3 }
        while lo < hi, Self.isSpace(bytes[lo]) { lo += 1 }
        while hi > lo, Self.isSpace(bytes[hi - 1]) { hi -= 1 }
        if lo == hi { return nil }
        let line = bytes[lo..<hi]
        func fail(_ reason: String) -> Element { .failure(JSONLLineError(line: number, reason: reason)) }

        guard String(validating: line, as: UTF8.self) != nil else { return fail("invalid UTF-8") }
        guard line.first == UInt8(ascii: "{") else { return fail("not a JSON object (a line must start with '{')") }
        if let depth = Self.nestingExceeds(maxDepth, line) {
            return fail("JSON nested deeper than \(maxDepth) levels (\(depth)+)")
        }
        // JSONValue.parse keeps each number's text: meta goes to jsonb unaltered (a Double would turn
        // 18446744073709551615 into 18446744073709552000 and 1e-400 into 0).
        guard case .object(let object)? = try? JSONValue.parse(line, maxDepth: maxDepth) else { return fail("invalid JSON") }
        switch Self.example(from: object) {
        case .success(let example): return .success(example)
        case .failure(let reason): return fail(reason.message)
        }
    }

    struct Reason: Error { var message: String }

    /// Maps a decoded top-level object to an example, or says which field is wrong.
    static func example(from object: [String: JSONValue]) -> Result<JSONLExample, Reason> {
        let prompt: String
        let response: String
        var consumed: Set<String> = ["meta", "source"]
        if let messages = object["messages"] {
            guard case .array(let turns) = messages else { return .failure(Reason(message: "\"messages\" is not an array")) }
            var rendered: [(role: String, content: String)] = []
            for (i, turn) in turns.enumerated() {
                guard let t = turn.objectValue else { return .failure(Reason(message: "messages[\(i)] is not an object")) }
                guard let role = t["role"]?.stringValue else { return .failure(Reason(message: "messages[\(i)].role missing or not a string")) }
                guard let content = t["content"]?.stringValue else { return .failure(Reason(message: "messages[\(i)].content missing or not a string")) }
                rendered.append((role, content))
            }
            guard let last = rendered.lastIndex(where: { $0.role == "assistant" }) else {
                return .failure(Reason(message: "\"messages\" has no assistant turn"))
            }
            prompt = rendered[..<last].map { "\($0.role): \($0.content)\n" }.joined()
            response = rendered[last].content
            consumed.insert("messages")
        } else {
            guard let p = object["prompt"] else { return .failure(Reason(message: "missing \"prompt\" (or \"messages\")")) }
            guard let ps = p.stringValue else { return .failure(Reason(message: "\"prompt\" is not a string")) }
            guard let r = object["response"] else { return .failure(Reason(message: "missing \"response\"")) }
            guard let rs = r.stringValue else { return .failure(Reason(message: "\"response\" is not a string")) }
            prompt = ps
            response = rs
            consumed.formUnion(["prompt", "response"])
        }
        if response.isEmpty { return .failure(Reason(message: "empty response")) }

        var source: String? = nil
        if let s = object["source"] {
            switch s {
            case .string(let v): source = v
            case .null: source = nil
            default: return .failure(Reason(message: "\"source\" is not a string"))
            }
        }
        var meta: [String: JSONValue] = [:]
        for (key, value) in object where !consumed.contains(key) { meta[key] = value }
        if let m = object["meta"] {
            switch m {
            case .object(let members): meta.merge(members) { _, explicit in explicit }
            case .null: break
            default: meta["meta"] = m
            }
        }
        return .success(JSONLExample(prompt: prompt, response: response, source: source, meta: meta.isEmpty ? nil : meta))
    }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }

    /// Depth at which `line` first exceeds `limit` brackets, ignoring brackets inside strings; nil if never.
    static func nestingExceeds(_ limit: Int, _ line: ArraySlice<UInt8>) -> Int? {
        var depth = 0
        var inString = false
        var escaped = false
        for b in line {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > limit { return depth }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return nil
    }
}

extension JSONLReader {
    /// Reads lines in chunks; a line too long to keep is dropped while its bytes stream past.
    public final class Iterator: IteratorProtocol {
        let reader: JSONLReader
        var handle: FileHandle?
        var openError: String?
        var buffer: [UInt8] = []
        var start = 0
        var eof = false
        /// The 1-based number of the line the last element came from (blank lines count).
        public private(set) var lineNumber = 0
        /// True while skipping the rest of an over-long line.
        var discarding = false
        var finished = false
        /// Why the file could not be read to its end, once that happened. The iterator then yields one
        /// last failure (a line number after the last line read) and stops; a caller that must not
        /// take a cut-off file for a whole one checks this after each failure.
        public private(set) var readError: String?

        init(reader: JSONLReader) {
            self.reader = reader
            switch reader.input {
            case .bytes(let data):
                buffer = [UInt8](data)
                eof = true
            case .file(let url):
                do { handle = try FileHandle(forReadingFrom: url) } catch { openError = "cannot open file: \(error.localizedDescription)" }
            }
        }

        deinit { try? handle?.close() }

        public func next() -> Element? {
            if finished { return nil }
            if let e = openError {
                finished = true
                return .failure(JSONLLineError(line: 0, reason: e))
            }
            while true {
                if let readError {
                    finished = true
                    return .failure(JSONLLineError(line: lineNumber + 1, reason: "read error: \(readError)"))
                }
                if let nl = buffer[start...].firstIndex(of: 0x0A) {
                    let lineStart = start
                    start = nl + 1
                    lineNumber += 1
                    if discarding {
                        discarding = false
                        return tooLong()
                    }
                    if nl - lineStart > reader.maxLineBytes { return tooLong() }
                    if let element = reader.parse(line: buffer[lineStart..<nl], number: lineNumber) { return element }
                    continue
                }
                // No newline in what we hold.
                if buffer.count - start > reader.maxLineBytes {
                    discarding = true
                    buffer.removeAll(keepingCapacity: true)
                    start = 0
                }
                if eof {
                    finished = true
                    if discarding {
                        lineNumber += 1
                        return tooLong()
                    }
                    if start < buffer.count {
                        lineNumber += 1
                        let rest = buffer[start...]
                        start = buffer.count
                        return reader.parse(line: rest, number: lineNumber)
                    }
                    return nil
                }
                readChunk()
            }
        }

        func tooLong() -> Element {
            .failure(JSONLLineError(line: lineNumber, reason: "line longer than \(reader.maxLineBytes) bytes"))
        }

        func readChunk() {
            if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            do {
                if let chunk = try handle?.read(upToCount: reader.chunkBytes), !chunk.isEmpty {
                    buffer.append(contentsOf: chunk)
                } else {
                    eof = true
                }
            } catch {
                // Not the end of the file: a partial line must not parse as a whole one, and nothing
                // after it was seen.
                readError = (error as NSError).localizedDescription
                buffer.removeAll()
                start = 0
            }
        }
    }
}
