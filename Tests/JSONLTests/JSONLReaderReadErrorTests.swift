import Foundation
import Testing
@testable import JSONL

/// A file that cannot be read to its end is not a shorter file (`tovd import` relies on this).
@Suite struct JSONLReaderReadErrorTests {
    /// A directory opens like a file on Linux, and its first read fails (EISDIR).
    @Test func aReadErrorEndsTheStreamWithAFailure() throws {
        let directory = NSTemporaryDirectory() + "jsonl-read-error-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let lines = try JSONLReader(url: URL(fileURLWithPath: directory)).makeIterator()
        guard case .failure(let error)? = lines.next() else {
            Issue.record("a read error must yield a failure, not end the stream")
            return
        }
        #expect(error.reason.hasPrefix("read error"), "\(error)")
        #expect(lines.readError != nil)
        #expect(lines.next() == nil)
    }
}
