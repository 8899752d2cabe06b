import CLibPQ
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One PostgreSQL session over libpq.
///
/// libpq's calls block, so every one of them runs on a thread this connection owns (a serial
/// worker, see ``ConnectionThread``), never on Swift's cooperative pool; callers `await` the result.
/// A connection serves one task at a time: give each concurrent task its own connection.
public final class Connection: @unchecked Sendable {
    // @unchecked: `cancelHandle` is a C pointer (PQcancel may use it from any thread); mutable state is
    // in `state`, and libpq calls run on the connection's one serial thread.
    private let thread: ConnectionThread
    /// The PGconn; only touched on `thread` (jobs capture the box, not the connection, so closing
    /// from `deinit` is safe).
    private let box: PGBox
    /// PQcancel may be called from any thread.
    private let cancelHandle: OpaquePointer?
    private let logger: Logger?
    private struct State {
        var closed = false
        var broken = false
        var notificationContinuation: AsyncThrowingStream<PQNotification, Error>.Continuation?
    }
    private let state = Mutex(State())

    public let backendPID: Int32

    private init(thread: ConnectionThread, pg: OpaquePointer, logger: Logger?) {
        self.thread = thread
        self.box = PGBox(pg)
        self.cancelHandle = PQgetCancel(pg)
        self.backendPID = PQbackendPID(pg)
        self.logger = logger
    }

    deinit {
        close()
        if let cancelHandle { PQfreeCancel(cancelHandle) }
    }

    // MARK: - Connecting

    /// Opens a session. `conninfo` is a keyword string (`host=... dbname=...`) or a `postgresql://` URI.
    ///
    /// Every session gets TCP keepalives and a user timeout (``Conninfo/tcpDefaults``) and JIT off
    /// (``Conninfo/sessionDefaults``) unless `conninfo` sets them. Errors never quote a password from
    /// `conninfo`, and say whether retrying can help: ``PQError/Code/badConninfo`` and
    /// ``PQError/Code/connectionRejected`` are ``PQError/isPermanent``, ``PQError/Code/connectionFailed``
    /// is not.
    public static func connect(_ conninfo: String, applicationName: String? = nil, logger: Logger? = nil) async throws -> Connection {
        let secrets = try Conninfo.check(conninfo)
        let thread = ConnectionThread(name: "pq-connection")
        let connecting: OpaquePointer
        do {
            connecting = try await thread.run {
            // Our defaults first and the caller's string last: with expand_dbname libpq lets later
            // keywords override earlier ones, so whatever the caller set wins.
            let defaults = Conninfo.tcpDefaults + Conninfo.sessionDefaults
            var keys = defaults.map(\.key) + ["dbname"]
            var values = defaults.map(\.value) + [conninfo]
            if let applicationName {
                keys.append("fallback_application_name")
                values.append(applicationName)
            }
            let conn = withCStrings(keys) { k in withCStrings(values) { v in PQconnectdbParams(k, v, 1) } }
            guard let conn else { throw PQError(.connectionFailed, "out of memory creating a libpq connection") }
            guard PQstatus(conn) == CONNECTION_OK else {
                let raw = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
                PQfinish(conn)
                let message = Conninfo.redact(raw, in: conninfo, known: secrets)
                if Conninfo.isRejection(raw) {
                    throw PQError(.connectionRejected, message + "; retrying will not help: fix the user, password or database in the connection string, or the server's pg_hba.conf")
                }
                throw PQError(.connectionFailed, message)
            }
            // Server NOTICEs ("relation already exists, skipping") would go to stderr; they are not
            // errors and would only clutter the journal, so they are dropped.
            PQsetNoticeProcessor(conn, { _, _ in }, nil)
            return conn
            }
        } catch {
            thread.stop()
            throw error
        }
        return Connection(thread: thread, pg: connecting, logger: logger)
    }

    /// Connects, retrying with ``RetryPolicy`` backoff until it succeeds, the task is cancelled, or the
    /// error is one retrying cannot fix (``PQError/isPermanent``, thrown at once).
    ///
    /// - Parameter sleep: waits between attempts; a caller that must stop on some other signal (a
    ///   graceful shutdown) passes a sleep that throws on it, ending the loop.
    public static func connect(_ conninfo: String, retry: RetryPolicy, applicationName: String? = nil, logger: Logger? = nil,
                               sleep: (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
                               onAttemptFailed: ((Int, PQError) -> Void)? = nil) async throws -> Connection {
        var generator = SystemRandomNumberGenerator()
        var attempt = 0
        while true {
            try Task.checkCancellation()
            attempt += 1
            do {
                return try await connect(conninfo, applicationName: applicationName, logger: logger)
            } catch let error as PQError where !error.isPermanent {
                onAttemptFailed?(attempt, error)
                try await sleep(retry.delay(afterAttempt: attempt, using: &generator))
            }
        }
    }

    /// The value libpq uses for connection option `keyword` in this session, after the defaults and
    /// the caller's conninfo (`keepalives_idle`, `host`, ...); nil when unset. Never a password field.
    public func option(_ keyword: String) async throws -> String? {
        try await onThread { pg in
            guard let options = PQconninfo(pg) else { return nil }
            defer { PQconninfoFree(options) }
            var option = options
            while let key = option.pointee.keyword {
                if String(cString: key) == keyword {
                    if let display = option.pointee.dispchar, String(cString: display) == "*" { return nil }
                    return option.pointee.val.map { String(cString: $0) }
                }
                option += 1
            }
            return nil
        }
    }

    /// False once the session broke (a query failed with a connection error) or was closed.
    public var isConnected: Bool { state.withLock { !$0.closed && !$0.broken } }

    /// Ends the session; idempotent. A LISTEN stream finishes. Does not wait for the server.
    public func close() {
        let wasClosed = state.withLock { state -> Bool in
            defer { state.closed = true }
            return state.closed
        }
        guard !wasClosed else { return }
        finishNotifications(nil)
        let box = self.box
        thread.submit {
            if let pg = box.pg { PQfinish(pg) }
            box.pg = nil
        }
        thread.stop()
    }

    /// Asks the server to cancel the statement running now (safe from any thread).
    public func cancel() {
        guard let cancelHandle else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancelHandle, &buffer, Int32(buffer.count))
    }

    // MARK: - Queries

    /// Runs one statement with `$1...$n` parameters and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ params: [PQValue?] = []) async throws -> QueryResult {
        try await onThread { pg in
            let encoded = params.map { $0?.pqParameter }
            let result = withParameters(encoded) { values, lengths, formats in
                PQexecParams(pg, sql, Int32(encoded.count), nil, values, lengths, formats, 0)
            }
            return try Self.collect(result, pg)
        }
    }

    /// Runs one statement and returns the number of rows it affected.
    @discardableResult
    public func execute(_ sql: String, _ params: [PQValue?] = []) async throws -> Int {
        try await query(sql, params).rowsAffected
    }

    /// Runs a script of several statements without parameters (migrations).
    public func simpleQuery(_ sql: String) async throws {
        try await onThread { pg in
            _ = try Self.collect(PQexec(pg, sql), pg)
        }
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    public func transaction<T>(isolation: IsolationLevel = .readCommitted, _ body: (Connection) async throws -> T) async throws -> T {
        try await simpleQuery("BEGIN ISOLATION LEVEL \(isolation.rawValue)")
        do {
            let value = try await body(self)
            try await simpleQuery("COMMIT")
            return value
        } catch {
            try? await simpleQuery("ROLLBACK")
            throw error
        }
    }

    // MARK: - COPY

    /// `COPY ... FROM STDIN`: `produce` sends chunks of COPY-format data. Returns the rows copied.
    @discardableResult
    public func copyIn(_ sql: String, _ produce: (_ send: ([UInt8]) async throws -> Void) async throws -> Void) async throws -> Int {
        try await onThread { pg in
            let result = PQexec(pg, sql)
            defer { PQclear(result) }
            guard PQresultStatus(result) == PGRES_COPY_IN else { throw PQError.from(result: result, connection: pg, code: .copyFailed) }
        }
        var failure: Error?
        do {
            try await produce { chunk in
                try await self.onThread { pg in
                    let status = chunk.withUnsafeBufferPointer { buffer in
                        buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                            PQputCopyData(pg, $0, Int32(buffer.count))
                        }
                    }
                    guard status == 1 else { throw PQError.from(result: nil, connection: pg, code: .copyFailed) }
                }
            }
        } catch {
            failure = error
        }
        let errorMessage = failure.map { "\($0)" }
        return try await onThread { pg in
            // Ending with an error message makes the server abort the COPY (nothing is written).
            _ = PQputCopyEnd(pg, errorMessage)
            var rows = 0
            var error: PQError?
            while let result = PQgetResult(pg) {
                if PQresultStatus(result) == PGRES_COMMAND_OK {
                    rows = Int(String(cString: PQcmdTuples(result))) ?? 0
                } else if error == nil {
                    error = PQError.from(result: result, connection: pg, code: .copyFailed)
                }
                PQclear(result)
            }
            if let failure { throw failure }
            if let error { throw error }
            return rows
        }
    }

    /// `COPY ... TO STDOUT`: `consume` receives each data row as it arrives.
    public func copyOut(_ sql: String, _ consume: @escaping ([UInt8]) throws -> Void) async throws {
        try await onThread { pg in
            let started = PQexec(pg, sql)
            defer { PQclear(started) }
            guard PQresultStatus(started) == PGRES_COPY_OUT else { throw PQError.from(result: started, connection: pg, code: .copyFailed) }
            var consumerError: Error?
            while true {
                var buffer: UnsafeMutablePointer<CChar>?
                let n = PQgetCopyData(pg, &buffer, 0)
                if n > 0, let buffer {
                    if consumerError == nil {
                        do {
                            try consume(Array(UnsafeRawBufferPointer(start: buffer, count: Int(n))))
                        } catch {
                            consumerError = error
                        }
                    }
                    PQfreemem(buffer)
                } else if n == -1 {
                    break
                } else {
                    throw PQError.from(result: nil, connection: pg, code: .copyFailed)
                }
            }
            var error: PQError?
            while let result = PQgetResult(pg) {
                if PQresultStatus(result) != PGRES_COMMAND_OK, error == nil {
                    error = PQError.from(result: result, connection: pg, code: .copyFailed)
                }
                PQclear(result)
            }
            if let consumerError { throw consumerError }
            if let error { throw error }
        }
    }

    // MARK: - LISTEN / NOTIFY

    public func listen(_ channel: String) async throws {
        try await simpleQuery("LISTEN \(try await quotedIdentifier(channel))")
    }

    public func unlisten(_ channel: String) async throws {
        try await simpleQuery("UNLISTEN \(try await quotedIdentifier(channel))")
    }

    /// Notifications for the channels this connection LISTENs to. While the stream is open the
    /// connection's thread waits on the socket between queries; the stream ends with an error when the
    /// session breaks. One stream per connection.
    public func notifications() -> AsyncThrowingStream<PQNotification, Error> {
        let (stream, continuation) = AsyncThrowingStream<PQNotification, Error>.makeStream()
        state.withLock { $0.notificationContinuation = continuation }
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            self.state.withLock { $0.notificationContinuation = nil }
            self.thread.setIdleWork(nil)
        }
        thread.setIdleWork { [weak self] in self?.pollNotifications() }
        return stream
    }

    /// Runs on the connection thread while idle: waits for socket input (or a wake-up), then delivers
    /// every pending notification.
    private func pollNotifications() {
        guard let pg = box.pg else { return }
        let socket = PQsocket(pg)
        guard socket >= 0 else {
            finishNotifications(PQError(.connectionLost, "the connection has no socket"))
            return
        }
        thread.waitForInput(socket: socket, timeoutMilliseconds: 1000)
        if PQconsumeInput(pg) == 0 {
            finishNotifications(PQError.from(result: nil, connection: pg, code: .connectionLost))
            return
        }
        deliverPendingNotifications(pg)
    }

    private func deliverPendingNotifications(_ pg: OpaquePointer) {
        while let note = PQnotifies(pg) {
            let notification = PQNotification(channel: String(cString: note.pointee.relname),
                                              payload: String(cString: note.pointee.extra),
                                              pid: note.pointee.be_pid)
            PQfreemem(note)
            _ = state.withLock { $0.notificationContinuation }?.yield(notification)
        }
    }

    private func finishNotifications(_ error: Error?) {
        let continuation = state.withLock { state -> AsyncThrowingStream<PQNotification, Error>.Continuation? in
            defer { state.notificationContinuation = nil }
            return state.notificationContinuation
        }
        thread.setIdleWork(nil)
        continuation?.finish(throwing: error)
    }

    // MARK: - Advisory locks

    /// Session-level `pg_try_advisory_lock`: true if this session now holds `key`.
    public func tryAdvisoryLock(_ key: Int64) async throws -> Bool {
        try await query("SELECT pg_try_advisory_lock($1)", [key]).first!.get(Bool.self, 0)
    }

    /// Session-level `pg_advisory_lock`: waits until this session holds `key`.
    public func advisoryLock(_ key: Int64) async throws {
        try await query("SELECT pg_advisory_lock($1)", [key])
    }

    @discardableResult
    public func advisoryUnlock(_ key: Int64) async throws -> Bool {
        try await query("SELECT pg_advisory_unlock($1)", [key]).first!.get(Bool.self, 0)
    }

    /// Transaction-level `pg_try_advisory_xact_lock`, released at COMMIT or ROLLBACK.
    public func tryAdvisoryXactLock(_ key: Int64) async throws -> Bool {
        try await query("SELECT pg_try_advisory_xact_lock($1)", [key]).first!.get(Bool.self, 0)
    }

    // MARK: - Internals

    private func quotedIdentifier(_ name: String) async throws -> String {
        try await onThread { pg in
            guard let quoted = PQescapeIdentifier(pg, name, name.utf8.count) else {
                throw PQError.from(result: nil, connection: pg, code: .queryFailed)
            }
            defer { PQfreemem(quoted) }
            return String(cString: quoted)
        }
    }

    /// Runs `body` with the live PGconn on the connection thread.
    private func onThread<T>(_ body: @escaping (OpaquePointer) throws -> T) async throws -> T {
        guard !state.withLock({ $0.closed }) else { throw PQError(.closed, "the connection was closed") }
        let box = self.box
        do {
            return try await thread.run { [self] in
                guard let pg = box.pg else { throw PQError(.closed, "the connection was closed") }
                let value = try body(pg)
                // Notifications that arrived with this result are delivered now rather than at the next poll.
                if state.withLock({ $0.notificationContinuation != nil }) { deliverPendingNotifications(pg) }
                return value
            }
        } catch let error as PQError where error.isConnectionProblem {
            state.withLock { $0.broken = true }
            throw error
        }
    }

    /// Turns a PGresult into rows, or into an error; always frees it.
    private static func collect(_ result: OpaquePointer?, _ pg: OpaquePointer) throws -> QueryResult {
        guard let result else { throw PQError.from(result: nil, connection: pg, code: .queryFailed) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            break
        default:
            throw PQError.from(result: result, connection: pg, code: .queryFailed)
        }
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var rows: [Row] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<Int32(rowCount) {
            var values: [[UInt8]?] = []
            values.reserveCapacity(columnCount)
            for c in 0..<Int32(columnCount) {
                if PQgetisnull(result, r, c) == 1 {
                    values.append(nil)
                } else {
                    let length = Int(PQgetlength(result, r, c))
                    values.append(Array(UnsafeRawBufferPointer(start: PQgetvalue(result, r, c), count: length)))
                }
            }
            rows.append(Row(values: values, columns: columns))
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return QueryResult(columns: columns, rows: rows, rowsAffected: affected)
    }
}

/// Holds the PGconn so thread jobs can reach it without retaining the connection.
final class PGBox: @unchecked Sendable {
    // @unchecked: `pg` is touched only on the connection's serial thread.
    var pg: OpaquePointer?
    init(_ pg: OpaquePointer?) { self.pg = pg }
}

/// Calls `body` with C string pointers for `strings`, NULL-terminated as libpq's arrays are.
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let duplicates = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    return body(duplicates.map { UnsafePointer($0) } + [nil])
}

/// Lays out parameters for PQexecParams; NULL parameters are null pointers.
private func withParameters<R>(_ params: [(bytes: [UInt8], binary: Bool)?],
                               _ body: ([UnsafePointer<CChar>?], [Int32], [Int32]) -> R) -> R {
    let buffers: [UnsafeMutablePointer<CChar>?] = params.map { param in
        guard let param else { return nil }
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(param.bytes.count, 1) + 1)
        param.bytes.withUnsafeBytes { raw in
            if let base = raw.baseAddress { memcpy(buffer, base, param.bytes.count) }
        }
        buffer[param.bytes.count] = 0
        return buffer
    }
    defer { buffers.forEach { $0?.deallocate() } }
    let lengths = params.map { Int32($0?.bytes.count ?? 0) }
    let formats = params.map { ($0?.binary ?? false) ? Int32(1) : Int32(0) }
    return body(buffers.map { $0.map { UnsafePointer($0) } }, lengths, formats)
}
