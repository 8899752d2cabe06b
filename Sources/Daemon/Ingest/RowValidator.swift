/// Decides whether a candidate row can be scored, from its raw bytes, before any tokenizer runs.
///
/// Pure: the worker calls it on claimed rows and writes `.reject` results to `tov.rejects` in the
/// same transaction that completes the claim. Details name sizes and limits, never row text, so they
/// are safe to log.
public struct RowValidator: Sendable {
    public enum Verdict: Equatable, Sendable {
        case ready(promptBytes: Int, responseBytes: Int)
        case reject(reason: RejectReason, detail: String)
    }

    /// The longest prompt or response accepted, in bytes (setting `max_text_bytes`).
    public var maxTextBytes: Int
    /// Share of control bytes (other than tab, newline, carriage return) above which a text is
    /// taken for binary data rather than language.
    public var maxControlShare: Double = 0.3

    public init(maxTextBytes: Int = 1 << 20) {
        self.maxTextBytes = maxTextBytes
    }

    public func check(prompt: [UInt8], response: [UInt8]) -> Verdict {
        if let tooLong = checkSizes(promptBytes: prompt.count, responseBytes: response.count) { return tooLong }
        for (field, bytes, emptyReason) in [("prompt", prompt, RejectReason.emptyPrompt), ("response", response, .emptyResponse)] {
            if let offset = firstInvalidUTF8(bytes) {
                return .reject(reason: .invalidUTF8, detail: "\(field) is not valid UTF-8 at byte \(offset); re-encode the source as UTF-8")
            }
            if bytes.allSatisfy(Self.isWhitespace) {
                return .reject(reason: emptyReason, detail: "\(field) is empty or only whitespace")
            }
            let control = bytes.lazy.filter(Self.isControl).count
            if Double(control) > maxControlShare * Double(bytes.count) {
                return .reject(reason: .binaryContent, detail: "\(field) is \(control * 100 / bytes.count)% control bytes; it looks like binary data, not text")
            }
        }
        return .ready(promptBytes: prompt.count, responseBytes: response.count)
    }

    /// The `too_long` verdict from sizes alone, or nil when both fit: for a claim that measured the
    /// rows with `octet_length` and did not fetch text that could not be scored anyway.
    public func checkSizes(promptBytes: Int, responseBytes: Int) -> Verdict? {
        for (field, count) in [("prompt", promptBytes), ("response", responseBytes)] where count > maxTextBytes {
            return .reject(reason: .tooLong, detail: "\(field) is \(count) bytes, over the limit of \(maxTextBytes) (setting max_text_bytes)")
        }
        return nil
    }

    static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }
    static func isControl(_ b: UInt8) -> Bool { (b < 0x20 && b != 0x09 && b != 0x0A && b != 0x0D) || b == 0x7F }

    /// Offset of the first byte that does not start or continue a well-formed UTF-8 sequence.
    func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b < 0x80 { i += 1; continue }
            let length: Int
            var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
            switch b {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; upper = 0x9F
            case 0xF0: length = 4; lower = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; upper = 0x8F
            default: return i
            }
            guard i + length <= n else { return i }
            if bytes[i + 1] < lower || bytes[i + 1] > upper { return i }
            for k in 2..<length where bytes[i + k] & 0xC0 != 0x80 { return i }
            i += length
        }
        return nil
    }
}

/// Mirrors the SQL enum `tov.reject_reason`.
public enum RejectReason: String, Sendable, CaseIterable {
    case emptyPrompt = "empty_prompt"
    case emptyResponse = "empty_response"
    case tooLong = "too_long"
    case invalidUTF8 = "invalid_utf8"
    case binaryContent = "binary_content"
    /// Mirrors tov.reject_reason; never written since the tokenizer became byte-level (every byte
    /// sequence encodes), kept so rows rejected by older versions still decode.
    case tokenizerFailure = "tokenizer_failure"
    case repeatedFailure = "repeated_failure"
}
