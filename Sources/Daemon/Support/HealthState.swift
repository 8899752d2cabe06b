import Foundation
import Synchronization

/// What `/healthz` and the watchdog report: whether every worker's database connection is up.
/// A worker marks itself down when its connection drops and up again after reconnecting.
public final class HealthState: Sendable {
    private struct State {
        var down: Set<String> = []
        var listening = false
        var onChange: (@Sendable () -> Void)?
    }
    private let state = Mutex(State())
    private let metrics: DaemonMetrics?
    /// Called when the database goes down or comes back, so STATUS= changes at once.
    var onChange: (@Sendable () -> Void)? {
        get { state.withLock { $0.onChange } }
        set { state.withLock { $0.onChange = newValue } }
    }

    public init(metrics: DaemonMetrics? = nil) {
        self.metrics = metrics
    }

    public func setDatabase(up: Bool, worker: String) {
        let (allUp, changed, handler) = state.withLock { state -> (Bool, Bool, (@Sendable () -> Void)?) in
            let before = state.down.isEmpty
            if up { state.down.remove(worker) } else { state.down.insert(worker) }
            return (state.down.isEmpty, before != state.down.isEmpty, state.onChange)
        }
        metrics?.databaseUp.set(to: allUp ? 1 : 0)
        if changed { handler?() }
    }

    public func setListening(_ value: Bool) { state.withLock { $0.listening = value } }

    public var isDatabaseUp: Bool { state.withLock { $0.down.isEmpty } }
    public var isListening: Bool { state.withLock { $0.listening } }
}
