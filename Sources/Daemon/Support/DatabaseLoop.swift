import Logging
import PQ
import ServiceLifecycle

/// The one connect / reconnect / give-up loop of every service that works on a connection of its own
/// (scoring workers, the lease, the leader jobs, the listener, the reporter). Written once, so the
/// rules are the same everywhere:
///
/// - connecting retries with backoff, and a graceful shutdown ends the wait at once;
/// - an error retrying cannot fix (a rejected login, a conninfo libpq cannot parse) ends the service
///   with that error, and systemd's restart policy does the waiting;
/// - a lost connection is closed and opened again on the next iteration;
/// - `CancellationError` ends the loop when the service is stopping, and is otherwise handed to
///   `onCancelled` (a leader job's training stopped because the lease moved);
/// - anything else is handed to `onError` (log it, report it in tov.workers.last_error) and the loop
///   pauses `errorPause` before trying again, so a bad state never spins.
///
/// The connection is opened lazily, when an iteration asks for it: a standby leader job holds none.
final class DatabaseLoop: @unchecked Sendable {
    // @unchecked: `current` is touched only by the task running `run`, which owns the loop.
    let conninfo: String
    /// How the service is named in logs ("worker host/0 cannot reach the database").
    let name: String
    let logger: Logger
    let stopping: StopFlag
    /// Run on every new connection before the first iteration uses it (session settings).
    var prepare: @Sendable (Connection) async throws -> Void = { _ in }
    var errorPause: Duration = .seconds(1)
    /// What the pause after an error waits on: a test hands in a clock it advances itself.
    let clock: any Clock<Duration>
    private var current: Connection?

    init(conninfo: String, name: String, logger: Logger, stopping: StopFlag, clock: any Clock<Duration>) {
        self.conninfo = conninfo
        self.name = name
        self.logger = logger
        self.stopping = stopping
        self.clock = clock
    }

    /// The open connection, connecting (with retries) when there is none.
    func connection() async throws -> Connection {
        if let current, current.isConnected { return current }
        current?.close()
        current = nil
        let fresh = try await Connection.connectRetrying(conninfo, as: name, logger: logger, clock: clock)
        try await prepare(fresh)
        current = fresh
        return fresh
    }

    /// The open connection if there is one, without connecting.
    private var openConnection: Connection? { current?.isConnected == true ? current : nil }

    /// Closes the connection (a standby gives it up; the next `connection()` opens a new one).
    func disconnect() {
        current?.close()
        current = nil
    }

    /// Runs `iteration` until the service stops. Each iteration does one unit of work and its own
    /// waiting (on a wake-up signal or a clock). `onStop` gets the connection still open, if any, for a
    /// last write on the way out (hand the lease over, mark the instance stopped); then it is closed.
    func run(onConnectionLost: (PQError) -> Void = { _ in },
             onError: (Error) -> Void,
             onCancelled: () -> Void = {},
             onStop: (Connection?) async -> Void = { _ in },
             _ iteration: () async throws -> Void) async throws {
        defer { disconnect() }
        do {
            try await loop(onConnectionLost: onConnectionLost, onError: onError, onCancelled: onCancelled, iteration)
        } catch {
            disconnect()
            throw error
        }
        await onStop(openConnection)
    }

    private func loop(onConnectionLost: (PQError) -> Void, onError: (Error) -> Void, onCancelled: () -> Void,
                      _ iteration: () async throws -> Void) async throws {
        while !stopping.isSet && !Task.isCancelled {
            do {
                try await iteration()
            } catch let error as PQError where error.isPermanent {
                throw error
            } catch let error as PQError where error.isConnectionProblem {
                logger.warning("\(name) lost its database connection; reconnecting", metadata: ["error": "\(error)"])
                disconnect()
                onConnectionLost(error)
            } catch is CancellationError {
                if stopping.isSet || Task.isCancelled || Task.isShuttingDownGracefully { break }
                onCancelled()
            } catch {
                onError(error)
                try? await clock.sleep(for: errorPause)
            }
        }
    }
}
