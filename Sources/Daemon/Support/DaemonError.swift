/// The one error type of the `Daemon` module.
///
/// `description` is safe for journald: it never contains row text or secrets. Messages say what to do.
public struct DaemonError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String { case migration, schemaTooNew, config, checkpoint, model, database, invalidInput }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        public static let migration = Code(.migration)
        public static let schemaTooNew = Code(.schemaTooNew)
        public static let config = Code(.config)
        public static let checkpoint = Code(.checkpoint)
        public static let model = Code(.model)
        public static let database = Code(.database)
        public static let invalidInput = Code(.invalidInput)
        public var description: String { base.rawValue }
    }

    public var code: Code
    public var message: String
    public var file: String
    public var line: Int

    public init(_ code: Code, _ message: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String { message }
    public var debugDescription: String { "DaemonError(\(code)) at \(file):\(line): \(message)" }
}
