extension Duration {
    /// Seconds as a Double, for logs, metrics, reports and SQL intervals.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
