import CLibPQ
import Foundation

/// A five-character SQLSTATE code with the ones tovd reacts to named.
public struct SQLState: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }

    public static let uniqueViolation = SQLState("23505")
    public static let foreignKeyViolation = SQLState("23503")
    public static let checkViolation = SQLState("23514")
    public static let notNullViolation = SQLState("23502")
    public static let serializationFailure = SQLState("40001")
    public static let deadlockDetected = SQLState("40P01")
    public static let adminShutdown = SQLState("57P01")
    public static let crashShutdown = SQLState("57P02")
    public static let cannotConnectNow = SQLState("57P03")
    public static let queryCanceled = SQLState("57014")
    public static let lockNotAvailable = SQLState("55P03")
    public static let undefinedTable = SQLState("42P01")
    public static let insufficientPrivilege = SQLState("42501")
    public static let invalidTextRepresentation = SQLState("22P02")
    public static let characterNotInRepertoire = SQLState("22021")
    public static let untranslatableCharacter = SQLState("22P05")

    /// Class 08 (connection exception) and the shutdown codes: the session is gone or going.
    public var isConnectionError: Bool {
        rawValue.hasPrefix("08") || self == .adminShutdown || self == .crashShutdown || self == .cannotConnectNow
    }

    public var description: String { rawValue }
}

/// The one error type of `PQ`.
///
/// `description` is safe for logs: the server's message and SQLSTATE, never parameter values or the
/// password. `debugDescription` adds the detail and hint, which may quote row values.
public struct PQError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String { case connectionFailed, connectionRejected, badConninfo, connectionLost, queryFailed, copyFailed, decoding, closed }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// The server could not be reached (down, restarting, too many clients): retrying may help.
        public static let connectionFailed = Code(.connectionFailed)
        /// The server refused this login (wrong password, unknown role or database, no pg_hba.conf entry):
        /// the same attempt fails again until someone changes the configuration.
        public static let connectionRejected = Code(.connectionRejected)
        /// libpq cannot parse the connection string.
        public static let badConninfo = Code(.badConninfo)
        public static let connectionLost = Code(.connectionLost)
        public static let queryFailed = Code(.queryFailed)
        public static let copyFailed = Code(.copyFailed)
        public static let decoding = Code(.decoding)
        public static let closed = Code(.closed)
        public var description: String { base.rawValue }
    }

    public var code: Code
    public var sqlState: SQLState?
    public var message: String
    public var detail: String?
    public var hint: String?

    public init(_ code: Code, _ message: String, sqlState: SQLState? = nil, detail: String? = nil, hint: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
    }

    /// The connection is unusable: reconnect rather than retry on it.
    public var isConnectionProblem: Bool {
        code == .connectionFailed || code == .connectionLost || code == .closed || (sqlState?.isConnectionError ?? false)
    }

    /// Connecting again with the same connection string cannot succeed: stop and tell a person (under
    /// systemd, exit and let the unit's restart policy do the waiting). Not a connection problem, so
    /// code that reconnects on ``isConnectionProblem`` does not spin on it.
    public var isPermanent: Bool { code == .connectionRejected || code == .badConninfo }

    public var description: String {
        sqlState.map { "\(code) [\($0)]: \(message)" } ?? "\(code): \(message)"
    }

    public var debugDescription: String {
        var text = description
        if let detail { text += " DETAIL: \(detail)" }
        if let hint { text += " HINT: \(hint)" }
        return text
    }

    /// Builds an error from a failed result (or the connection's last message when there is none).
    static func from(result: OpaquePointer?, connection: OpaquePointer?, code: Code) -> PQError {
        func field(_ f: Int32) -> String? {
            guard let result, let p = PQresultErrorField(result, f) else { return nil }
            return String(cString: p)
        }
        var message = field(Int32(UInt8(ascii: "M"))) ?? connection.flatMap { PQerrorMessage($0).map { String(cString: $0) } } ?? "unknown error"
        message = message.trimmingCharacters(in: .whitespacesAndNewlines)
        let sqlState = field(Int32(UInt8(ascii: "C"))).map(SQLState.init(rawValue:))
        // After a server crash the first query on an idle session gets a result libpq made up itself
        // ("server closed the connection unexpectedly", no SQLSTATE) while PQstatus can still read OK;
        // only the next call would see CONNECTION_BAD. Such a session is as dead as a BAD one.
        let lost = (connection.map { PQstatus($0) == CONNECTION_BAD } ?? true)
            || (sqlState == nil && lostConnectionMessages.contains { message.contains($0) })
        return PQError(lost ? .connectionLost : code, message,
                       sqlState: sqlState,
                       detail: field(Int32(UInt8(ascii: "D"))), hint: field(Int32(UInt8(ascii: "H"))))
    }
}

/// libpq's own texts for a session whose socket is gone (fe-misc.c, fe-secure.c, fe-protocol3.c).
let lostConnectionMessages = [
    "server closed the connection unexpectedly",
    "no connection to the server",
    "could not send data to server",
    "could not receive data from server",
    "connection to server was lost",
    "SSL SYSCALL error",
    "SSL connection has been closed unexpectedly",
    "lost synchronization with server",
]
