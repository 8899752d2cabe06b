/// The one error type of the `Surrogate` module.
///
/// `description` says what is wrong and what to do about it; it never contains training text.
public struct SurrogateError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String { case tokenizer, checkpoint, config, training, io }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        public static let tokenizer = Code(.tokenizer)
        public static let checkpoint = Code(.checkpoint)
        public static let config = Code(.config)
        public static let training = Code(.training)
        public static let io = Code(.io)
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

    public var description: String { "\(code): \(message)" }
    public var debugDescription: String { "SurrogateError(\(code)) at \(file):\(line): \(message)" }
}
