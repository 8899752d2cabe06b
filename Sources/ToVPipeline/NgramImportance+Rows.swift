import Selection

/// score_dsir's n-gram importance as the daemon and the pipeline compute it: per target, Z_val's
/// words against U's (the base model's uniform sample of the pool), and each row weighed by its
/// prompt and response. `OnePipelineTests` holds the daemon's stored weights to these.
extension NgramImportance {
    public init(zval: [RowText], u: [RowText]) {
        self.init(target: zval.map(Self.text), pool: u.map(Self.text))
    }

    public func logWeight(_ row: RowText) -> Double {
        logWeight(Self.text(row))
    }

    static func text(_ row: RowText) -> String {
        text(prompt: row.prompt, response: row.response)
    }
}
