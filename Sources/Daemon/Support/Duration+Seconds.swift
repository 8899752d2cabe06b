extension Duration {
    /// Seconds as a Double, for logs, metrics and SQL intervals.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
