/// The rows of one statement, copied out of libpq's result so it can be freed at once.
public struct QueryResult: Sequence, Sendable {
    public let columns: [String]
    public let rows: [Row]
    /// Rows inserted, updated, deleted, copied... (`PQcmdTuples`); 0 for plain SELECTs' count of rows, see `count`.
    public let rowsAffected: Int

    public var count: Int { rows.count }
    public var isEmpty: Bool { rows.isEmpty }
    public var first: Row? { rows.first }

    public func makeIterator() -> IndexingIterator<[Row]> { rows.makeIterator() }
}

/// One result row; columns are addressed by position or name.
public struct Row: Sendable {
    let values: [[UInt8]?]
    let columns: [String]

    public func isNull(_ column: Int) -> Bool { values[column] == nil }

    public func get<T: PQDecodable>(_ type: T.Type = T.self, _ column: Int) throws -> T {
        guard column >= 0, column < values.count else {
            throw PQError(.decoding, "column \(column) does not exist; the result has \(values.count)")
        }
        guard let bytes = values[column] else {
            throw PQError(.decoding, "column \"\(columns[column])\" is NULL; use getOptional")
        }
        return try decode(T.self, bytes, column: column)
    }

    public func get<T: PQDecodable>(_ type: T.Type = T.self, _ name: String) throws -> T {
        try get(type, try index(of: name))
    }

    public func getOptional<T: PQDecodable>(_ type: T.Type = T.self, _ column: Int) throws -> T? {
        guard column >= 0, column < values.count else {
            throw PQError(.decoding, "column \(column) does not exist; the result has \(values.count)")
        }
        return try values[column].map { try decode(T.self, $0, column: column) }
    }

    /// Decodes one value; a failure names the column (its name, never its value).
    private func decode<T: PQDecodable>(_ type: T.Type, _ bytes: [UInt8], column: Int) throws -> T {
        do {
            return try T.decode(pqText: bytes[...])
        } catch let error as PQError {
            throw PQError(error.code, "column \"\(columns[column])\": \(error.message)")
        }
    }

    public func getOptional<T: PQDecodable>(_ type: T.Type = T.self, _ name: String) throws -> T? {
        try getOptional(type, try index(of: name))
    }

    /// Whether the column called `name` is NULL.
    /// - Throws: ``PQError`` (`.decoding`) naming the column if the result has none by that name.
    public func isNull(_ name: String) throws -> Bool { values[try index(of: name)] == nil }

    /// The position of the first column called `name`. Reading by name means a statement can gain or
    /// reorder columns without shifting what each caller reads.
    private func index(of name: String) throws -> Int {
        guard let index = columns.firstIndex(of: name) else {
            // Column names are the statement's, never row data, so they are safe to put in the message.
            throw PQError(.decoding, "no column named \"\(name)\" in the result; it has: \(columns.joined(separator: ", "))")
        }
        return index
    }
}

/// One NOTIFY delivered to a LISTENing connection.
public struct PQNotification: Sendable, Equatable {
    public var channel: String
    public var payload: String
    public var pid: Int32
}

public enum IsolationLevel: String, Sendable {
    case readCommitted = "READ COMMITTED"
    case repeatableRead = "REPEATABLE READ"
    case serializable = "SERIALIZABLE"
}

/// Exponential backoff with jitter for (re)connecting.
public struct RetryPolicy: Sendable {
    public var initialDelay: Duration
    public var maxDelay: Duration
    public var multiplier: Double
    /// Each delay is scaled by a random factor in [1 − jitter, 1 + jitter], so many instances that
    /// lost the same server do not reconnect in lockstep.
    public var jitter: Double

    public init(initialDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(10), multiplier: Double = 2, jitter: Double = 0.2) {
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.multiplier = multiplier
        self.jitter = jitter
    }

    public static let `default` = RetryPolicy()

    /// The delay before attempt `attempt + 1` (attempt counts from 1).
    public func delay(afterAttempt attempt: Int, using random: inout some RandomNumberGenerator) -> Duration {
        let base = min(initialDelay * pow(multiplier, Double(attempt - 1)), maxDelay)
        return base * Double.random(in: (1 - jitter)...(1 + jitter), using: &random)
    }
}

private func pow(_ x: Double, _ y: Double) -> Double {
    var result = 1.0
    for _ in 0..<max(0, Int(y)) { result *= x }
    return result
}
