import Foundation
import Surrogate

/// Appends JSON lines to a new file through a buffer and hashes what it writes.
final class JSONLFileWriter {
    private let handle: FileHandle
    private var buffer = Data()
    private var hasher = SHA256()

    /// Creates (or truncates) the file at `url`.
    init(url: URL) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        handle = try FileHandle(forWritingTo: url)
    }

    /// Writes one encoded JSON value followed by a newline.
    func write(_ json: Data) throws {
        buffer.append(json)
        buffer.append(0x0A)
        if buffer.count >= 1 << 20 { try flush() }
    }

    private func flush() throws {
        hasher.update(buffer)
        try handle.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, closes and returns the SHA-256 of everything written.
    func finish() throws -> String {
        try flush()
        try handle.close()
        return hasher.hexDigest()
    }
}
