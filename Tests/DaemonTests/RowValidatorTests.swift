@testable import Daemon
import Testing

@Suite("Row validation before scoring")
struct RowValidatorTests {
    let validator = RowValidator(maxTextBytes: 1000)

    func reason(_ prompt: [UInt8], _ response: [UInt8]) -> RejectReason? {
        if case .reject(let reason, _) = validator.check(prompt: prompt, response: response) { return reason }
        return nil
    }

    @Test func acceptsOrdinaryText() {
        #expect(validator.check(prompt: Array("What is 2+2?".utf8), response: Array("4\n".utf8)) == .ready(promptBytes: 12, responseBytes: 2))
        #expect(reason(Array("Grüße, 世界 🙂".utf8), Array("tab\tand\r\nnewlines".utf8)) == nil)
    }

    @Test func rejectsEmptyAndWhitespace() {
        #expect(reason([], Array("x".utf8)) == .emptyPrompt)
        #expect(reason(Array(" \n\t ".utf8), Array("x".utf8)) == .emptyPrompt)
        #expect(reason(Array("x".utf8), []) == .emptyResponse)
    }

    @Test func rejectsTooLong() {
        #expect(reason(Array(repeating: 0x61, count: 1001), Array("x".utf8)) == .tooLong)
        #expect(reason(Array("x".utf8), Array(repeating: 0x61, count: 1000)) == nil)
    }

    /// Sizes alone (a claim that measured rows with octet_length) give the verdict the text would.
    @Test func sizesAloneGiveTheSameTooLongVerdict() {
        let long = Array(repeating: UInt8(0x61), count: 1001)
        #expect(validator.checkSizes(promptBytes: 1, responseBytes: 1001) == validator.check(prompt: Array("x".utf8), response: long))
        #expect(validator.checkSizes(promptBytes: 1001, responseBytes: 2002) == validator.check(prompt: long, response: long + long))
        #expect(validator.checkSizes(promptBytes: 1000, responseBytes: 1000) == nil)
    }

    @Test func rejectsInvalidUTF8() {
        for bad: [UInt8] in [[0xFF], [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x61, 0xE2, 0x82]] {
            #expect(reason(Array("ok".utf8), bad) == .invalidUTF8, "\(bad)")
        }
        #expect(validator.check(prompt: [0x61, 0x62, 0xFF], response: [0x61])
                == .reject(reason: .invalidUTF8, detail: "prompt is not valid UTF-8 at byte 2; re-encode the source as UTF-8"))
    }

    @Test func rejectsBinaryLookingText() {
        #expect(reason(Array("ok".utf8), [0x01, 0x02, 0x03, 0x61]) == .binaryContent)
        #expect(reason(Array("ok".utf8), Array("mostly text\u{01}".utf8)) == nil)
    }

    @Test func detailsNeverContainTheRowText() {
        let secret = "secret-token-\(Int.random(in: 0...1_000_000))"
        for response in [Array((secret + String(repeating: "x", count: 2000)).utf8), Array(secret.utf8) + [0xFF]] {
            if case .reject(_, let detail) = validator.check(prompt: Array("p".utf8), response: response) {
                #expect(!detail.contains(secret))
            } else {
                Issue.record("expected a reject")
            }
        }
    }

    @Test func validatorAgreesWithSwiftOnRandomBytes() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let count = Int.random(in: 1...12, using: &generator)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let swiftValid = String(validating: bytes, as: UTF8.self) != nil
            #expect((validator.firstInvalidUTF8(bytes) == nil) == swiftValid, "\(bytes)")
        }
    }
}
