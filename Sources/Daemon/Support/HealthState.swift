import Foundation

/// What `/healthz` and the watchdog report: whether every worker's database connection is up.
/// A worker marks itself down when its connection drops and up again after reconnecting.
public final class HealthState: @unchecked Sendable {
    private let lock = NSLock()
    private var down: Set<String> = []
    private var listening = false
    private let metrics: DaemonMetrics?
    /// Called when the database goes down or comes back, so STATUS= changes at once.
    var onChange: (@Sendable () -> Void)? {
        get { lock.withLock { changeHandler } }
        set { lock.withLock { changeHandler = newValue } }
    }
    private var changeHandler: (@Sendable () -> Void)?

    public init(metrics: DaemonMetrics? = nil) {
        self.metrics = metrics
    }

    public func setDatabase(up: Bool, worker: String) {
        let (allUp, changed): (Bool, Bool) = lock.withLock {
            let before = down.isEmpty
            if up { down.remove(worker) } else { down.insert(worker) }
            return (down.isEmpty, before != down.isEmpty)
        }
        metrics?.databaseUp.set(to: allUp ? 1 : 0)
        if changed { onChange?() }
    }

    public func setListening(_ value: Bool) { lock.withLock { listening = value } }

    public var isDatabaseUp: Bool { lock.withLock { down.isEmpty } }
    public var isListening: Bool { lock.withLock { listening } }
}
