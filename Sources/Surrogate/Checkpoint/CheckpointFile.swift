import CLZ4
import Foundation

/// The one checkpoint format: a header with everything needed to rebuild the model, the float32
/// parameter arena in an LZ4 frame, and a SHA-256 of all of it.
///
/// Layout (all integers little-endian; docs/checkpoint-format.md):
///
///     "TOVCKPT1"                      8 bytes magic
///     format version                  UInt32 (2; version 1 is still read)
///     header length                   UInt32, then the header:
///         config JSON                 UInt32 length + bytes (ModelConfig)
///         tokenizer                   UInt32 length + bytes (Tokenizer.serialized())
///         metadata count              UInt32, then per entry: key, value (UInt32 length + UTF-8 each)
///         tensor count                UInt64 (number of Float32 values)
///         (version 1 only)            32 bytes payload SHA-256, over the uncompressed floats
///     frame length                    UInt64
///     LZ4 frame                       content size set, content checksum enabled
///     (version 2 only)                32 bytes file SHA-256, over every byte before it
///
/// Version 2's trailing SHA-256 covers the whole file, so any change to the config, the tokenizer,
/// the metadata or the parameters is refused before anything is parsed; version 1 guarded only the
/// parameters. Every length is checked before it is used either way, and trailing bytes are refused:
/// a truncated or corrupted file is an error, never a crash or a silently wrong model.
public struct CheckpointFile: Equatable {
    public var configJSON: [UInt8]
    public var tokenizer: [UInt8]
    public var metadata: [String: String]
    public var tensors: [Float]

    public init(configJSON: [UInt8], tokenizer: [UInt8], metadata: [String: String], tensors: [Float]) {
        self.configJSON = configJSON
        self.tokenizer = tokenizer
        self.metadata = metadata
        self.tensors = tensors
    }

    static let magic = Array("TOVCKPT1".utf8)
    /// What `encoded()` writes.
    static let version: UInt32 = 2
    static let readableVersions: ClosedRange<UInt32> = 1...2
    static let digestLength = 32
    /// LZ4 turns at most 255 output bytes out of one input byte: a header that promises more
    /// parameters than the frame can hold is corrupt, and must not make us allocate for them.
    static let maxLZ4Ratio = 255

    /// Bit-exact comparison (NaN payloads and −0.0 included).
    public static func == (a: CheckpointFile, b: CheckpointFile) -> Bool {
        a.configJSON == b.configJSON && a.tokenizer == b.tokenizer && a.metadata == b.metadata
            && a.tensors.count == b.tensors.count && zip(a.tensors, b.tensors).allSatisfy { $0.bitPattern == $1.bitPattern }
    }

    var payload: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: tensors.count * 4)
        for (i, value) in tensors.enumerated() {
            let bits = value.bitPattern.littleEndian
            bytes[4 * i] = UInt8(truncatingIfNeeded: bits)
            bytes[4 * i + 1] = UInt8(truncatingIfNeeded: bits >> 8)
            bytes[4 * i + 2] = UInt8(truncatingIfNeeded: bits >> 16)
            bytes[4 * i + 3] = UInt8(truncatingIfNeeded: bits >> 24)
        }
        return bytes
    }

    public func encoded() -> [UInt8] {
        var header: [UInt8] = []
        ByteWriter.appendBlob(configJSON, to: &header)
        ByteWriter.appendBlob(tokenizer, to: &header)
        ByteWriter.append(UInt32(metadata.count), to: &header)
        for key in metadata.keys.sorted() {
            ByteWriter.appendBlob(Array(key.utf8), to: &header)
            ByteWriter.appendBlob(Array(metadata[key]!.utf8), to: &header)
        }
        ByteWriter.append(UInt64(tensors.count), to: &header)

        var out = Self.magic
        ByteWriter.append(Self.version, to: &out)
        ByteWriter.append(UInt32(header.count), to: &out)
        out.append(contentsOf: header)
        let frame = Self.compress(payload)
        ByteWriter.append(UInt64(frame.count), to: &out)
        out.append(contentsOf: frame)
        out.append(contentsOf: SHA256.digest(of: out))
        return out
    }

    /// Decodes and checks a checkpoint file.
    ///
    /// - Parameters:
    ///   - bytes: the whole file.
    ///   - expectedSHA256: the hex SHA-256 of the whole file recorded when it was written
    ///     (`tov.checkpoints.sha256`); nil skips that comparison.
    /// - Throws: ``SurrogateError`` (code `.checkpoint`) naming what is wrong.
    public static func decode(_ bytes: [UInt8], expectedSHA256: String? = nil) throws -> CheckpointFile {
        func corrupt(_ what: String) -> SurrogateError {
            SurrogateError(.checkpoint, "\(what); the checkpoint is truncated or corrupt and cannot be used: write it again (tovd pretrain, or a new model version)")
        }
        if let expectedSHA256 {
            let actual = SHA256.hex(SHA256.digest(of: bytes))
            guard actual == expectedSHA256.lowercased() else {
                throw SurrogateError(.checkpoint, "the checkpoint's SHA-256 is \(actual) but \(expectedSHA256) was recorded when it was written: the stored bytes were changed or damaged since; write it again")
            }
        }
        var reader = ByteReader(bytes)
        guard let magic = reader.bytes(8), magic == Self.magic else {
            throw SurrogateError(.checkpoint, "not a tovd checkpoint (the file does not start with TOVCKPT1)")
        }
        guard let version = reader.uint32() else { throw corrupt("missing format version") }
        guard Self.readableVersions.contains(version) else {
            throw SurrogateError(.checkpoint, "checkpoint format version \(version) is not supported by this tovd (it reads versions \(Self.readableVersions.lowerBound) to \(Self.readableVersions.upperBound)); use the tovd that wrote it")
        }
        if version >= 2 {
            // Checked before anything else is parsed: from here on every byte is as it was written.
            guard bytes.count >= reader.offset + Self.digestLength else { throw corrupt("file SHA-256 missing") }
            let body = bytes.count - Self.digestLength
            guard SHA256.digest(of: bytes[..<body]).elementsEqual(bytes[body...]) else {
                throw corrupt("file SHA-256 does not match its contents")
            }
            reader = ByteReader(bytes, offset: reader.offset, end: body)
        }
        guard let headerLength = reader.uint32(), let headerBytes = reader.bytes(Int(headerLength)) else { throw corrupt("header cut short") }
        var header = ByteReader(headerBytes)
        guard let config = header.blob(max: 1 << 20) else { throw corrupt("config missing") }
        guard let tokenizer = header.blob(max: 1 << 24) else { throw corrupt("tokenizer missing") }
        guard let metadataCount = header.uint32(), metadataCount <= 10_000 else { throw corrupt("metadata count invalid") }
        var metadata: [String: String] = [:]
        for _ in 0..<metadataCount {
            guard let key = header.blob(max: 1 << 16), let value = header.blob(max: 1 << 20) else { throw corrupt("metadata cut short") }
            metadata[String(decoding: key, as: UTF8.self)] = String(decoding: value, as: UTF8.self)
        }
        guard let tensorCount = header.uint64(), tensorCount <= UInt64(ModelConfig.maxParameters) else { throw corrupt("tensor count invalid") }
        let payloadDigest = version == 1 ? header.bytes(Self.digestLength) : []
        guard payloadDigest != nil, header.remaining == 0 else { throw corrupt("header has the wrong size") }
        guard let frameLength = reader.uint64(), frameLength <= UInt64(reader.remaining) else { throw corrupt("LZ4 frame cut short") }
        let frame = reader.bytes(Int(frameLength))!
        guard reader.remaining == 0 else { throw corrupt("\(reader.remaining) unexpected bytes after the LZ4 frame") }
        guard tensorCount * 4 <= UInt64(frame.count) * UInt64(Self.maxLZ4Ratio) else {
            throw corrupt("header promises \(tensorCount) parameters, more than a \(frame.count)-byte LZ4 frame can hold")
        }
        let payload = try decompress(frame, expectedBytes: Int(tensorCount) * 4, corrupt: corrupt)
        if version == 1, SHA256.digest(of: payload) != payloadDigest {
            throw corrupt("payload SHA-256 does not match the header")
        }
        var tensors = [Float](repeating: 0, count: Int(tensorCount))
        for i in 0..<tensors.count {
            let bits = UInt32(payload[4 * i]) | UInt32(payload[4 * i + 1]) << 8 | UInt32(payload[4 * i + 2]) << 16 | UInt32(payload[4 * i + 3]) << 24
            tensors[i] = Float(bitPattern: bits)
        }
        return CheckpointFile(configJSON: config, tokenizer: tokenizer, metadata: metadata, tensors: tensors)
    }

    public func write(to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(encoded())) else {
            throw SurrogateError(.io, "cannot write \(path): check the directory exists and is writable")
        }
    }

    public static func readBytes(from path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SurrogateError(.io, "cannot read checkpoint \(path): check the path")
        }
        return Array(data)
    }

    public static func read(from path: String) throws -> CheckpointFile { try decode(readBytes(from: path)) }

    // MARK: - LZ4 frame

    static func compress(_ payload: [UInt8]) -> [UInt8] {
        var preferences = LZ4F_preferences_t()
        preferences.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        preferences.frameInfo.contentSize = UInt64(payload.count)
        let bound = LZ4F_compressFrameBound(payload.count, &preferences)
        var out = [UInt8](repeating: 0, count: bound)
        let written = out.withUnsafeMutableBytes { dst in
            payload.withUnsafeBytes { src in
                LZ4F_compressFrame(dst.baseAddress, bound, src.baseAddress, payload.count, &preferences)
            }
        }
        precondition(LZ4F_isError(written) == 0, "LZ4F_compressFrame failed: \(String(cString: LZ4F_getErrorName(written)))")
        return Array(out.prefix(written))
    }

    static func decompress(_ frame: [UInt8], expectedBytes: Int, corrupt: (String) -> SurrogateError) throws -> [UInt8] {
        var context: OpaquePointer?
        guard LZ4F_isError(LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))) == 0, let context else {
            throw SurrogateError(.checkpoint, "cannot create an LZ4 decompression context")
        }
        defer { LZ4F_freeDecompressionContext(context) }
        var out = [UInt8](repeating: 0, count: expectedBytes + 1)
        var produced = 0, consumed = 0
        var finished = false
        try frame.withUnsafeBytes { src in
            try out.withUnsafeMutableBytes { dst in
                while consumed < frame.count {
                    var dstSize = dst.count - produced
                    var srcSize = frame.count - consumed
                    let hint = LZ4F_decompress(context, dst.baseAddress! + produced, &dstSize, src.baseAddress! + consumed, &srcSize, nil)
                    if LZ4F_isError(hint) != 0 {
                        throw corrupt("LZ4 frame error: \(String(cString: LZ4F_getErrorName(hint)))")
                    }
                    produced += dstSize
                    consumed += srcSize
                    if hint == 0 { finished = true; break }
                    if dstSize == 0 && srcSize == 0 { break }
                }
            }
        }
        guard finished, consumed == frame.count else { throw corrupt("LZ4 frame ends early") }
        guard produced == expectedBytes else { throw corrupt("payload is \(produced) bytes, header says \(expectedBytes)") }
        return Array(out.prefix(produced))
    }
}
