import ServiceLifecycle

extension Task where Success == Never, Failure == Never {
    /// True once the service group asked for a graceful stop or the task was cancelled.
    static var isStopping: Bool { Task.isCancelled || Task.isShuttingDownGracefully }
}
