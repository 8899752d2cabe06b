import Foundation
import Logging

/// One line per event on stderr, `key=value` metadata, shaped for journald.
///
/// Under systemd (`$JOURNAL_STREAM` set) the journal stamps time and priority itself, so the line
/// starts with a syslog priority prefix (`<6>`) instead of a timestamp; elsewhere it starts with an
/// ISO-8601 time. Values are quoted when they contain spaces, so lines stay machine-splittable.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let journald: Bool

    public init(label: String, level: Logger.Level = .info, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.label = label
        self.logLevel = level
        self.journald = environment["JOURNAL_STREAM"] != nil
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        var merged = metadata
        if let explicit { merged.merge(explicit) { _, new in new } }
        var text = journald ? "<\(Self.priority(level))>" : "\(Self.timestamp()) "
        text += "\(level.rawValue) \(label): \(message)"
        for key in merged.keys.sorted() {
            text += " \(key)=\(Self.quoted("\(merged[key]!)"))"
        }
        text += "\n"
        FileHandle.standardError.write(Data(text.utf8))
    }

    static func quoted(_ value: String) -> String {
        guard value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) else { return value }
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
        return "\"\(escaped)\""
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}
