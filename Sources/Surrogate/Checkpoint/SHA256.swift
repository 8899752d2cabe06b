import CCrypto
import Foundation

/// SHA-256 (FIPS 180-4), incremental, for checksums of checkpoints, downloaded and written files.
///
/// The digest itself is OpenSSL's (libcrypto's EVP interface, with its SHA-NI/AVX2 code paths);
/// this type only gives it value semantics: a copy hashes on independently of the original.
/// Foundation on Linux has no CryptoKit and the package avoids swift-crypto for build time.
public struct SHA256: Sendable {
    /// Owns one `EVP_MD_CTX`. Copied before a write when shared (copy-on-write), so `SHA256` behaves
    /// like the plain value it was when the state was a Swift array.
    private final class Context: @unchecked Sendable {
        // @unchecked: `pointer` is written only through a uniquely referenced copy (copy-on-write).
        let pointer: OpaquePointer

        init() {
            pointer = Self.newContext()
            Self.check(EVP_DigestInit_ex(pointer, EVP_sha256(), nil), "EVP_DigestInit_ex")
        }

        init(copying other: Context) {
            pointer = Self.newContext()
            Self.check(EVP_MD_CTX_copy_ex(pointer, other.pointer), "EVP_MD_CTX_copy_ex")
        }

        deinit { EVP_MD_CTX_free(pointer) }

        private static func newContext() -> OpaquePointer {
            guard let pointer = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed: out of memory") }
            return pointer
        }

        /// libcrypto fails these calls only on allocation failure or a broken installation, neither of
        /// which a caller could handle; the message names the call so the installation can be checked.
        static func check(_ result: Int32, _ call: String) {
            precondition(result == 1, "libcrypto \(call) failed: check the OpenSSL installation (libssl3)")
        }
    }

    private var context = Context()

    public init() {}

    /// Feeds more bytes.
    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let done: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if done == nil { Array(bytes).withUnsafeBytes { update($0) } }
    }

    /// Feeds more bytes from `Data`.
    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { update($0) }
    }

    private mutating func update(_ raw: UnsafeRawBufferPointer) {
        guard raw.count > 0 else { return }
        if !isKnownUniquelyReferenced(&context) { context = Context(copying: context) }
        Context.check(EVP_DigestUpdate(context.pointer, raw.baseAddress, raw.count), "EVP_DigestUpdate")
    }

    /// The digest as 64 lowercase hex characters. Does not change `self`.
    public func hexDigest() -> String {
        Self.hex(digest())
    }

    /// The 32-byte digest. Does not change `self`: it finalises a copy of the state.
    public func digest() -> [UInt8] {
        let final = Context(copying: context)
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        Context.check(EVP_DigestFinal_ex(final.pointer, &out, &length), "EVP_DigestFinal_ex")
        precondition(length == 32, "libcrypto returned a \(length)-byte SHA-256")
        return out
    }

    /// The 32-byte digest of `bytes`, in one call.
    public static func digest<Bytes: Sequence>(of bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.digest()
    }

    static func hex(_ digest: [UInt8]) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    /// Hex SHA-256 of a whole file, read in 1 MiB chunks.
    public static func hexDigest(ofFile url: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(chunk) }
        return hasher.hexDigest()
    }

    /// Hex SHA-256 of `data`.
    public static func hexDigest(of data: Data) -> String {
        var hasher = SHA256()
        hasher.update(data)
        return hasher.hexDigest()
    }
}
