import PQ

/// The Z_val signal of a target's live version as the status views show it (docs/selection.md, "Is
/// Z_val enough?"): the verdict of tov.zval_signal and the numbers behind it.
public struct ZvalSignal: Codable, Sendable, Equatable {
    /// "good", "fair" or "low".
    public var verdict: String
    /// The halves' agreement on the pool, the share of what one half teaches that holds for the other
    /// half's rows, and the share of Z_val's rows the other half helps; nil for a Z_val of one context.
    public var agreement: Double?
    public var transfer: Double?
    public var helpedShare: Double?

    public init(verdict: String, agreement: Double? = nil, transfer: Double? = nil, helpedShare: Double? = nil) {
        self.verdict = verdict
        self.agreement = agreement
        self.transfer = transfer
        self.helpedShare = helpedShare
    }

    /// From a status view's zval_signal, zval_agreement, zval_transfer and zval_helped_share; nil
    /// before a version is measured.
    init?(row: Row) throws {
        guard let verdict = try row.getOptional(String.self, "zval_signal") else { return nil }
        self.init(verdict: verdict, agreement: try row.getOptional(Double.self, "zval_agreement"),
                  transfer: try row.getOptional(Double.self, "zval_transfer"),
                  helpedShare: try row.getOptional(Double.self, "zval_helped_share"))
    }

    enum CodingKeys: String, CodingKey {
        case verdict, agreement, transfer, helpedShare = "helped_share"
    }

    /// Absent numbers as `null`, as for the rest of the report.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(verdict, forKey: .verdict)
        try c.encode(agreement, forKey: .agreement)
        try c.encode(transfer, forKey: .transfer)
        try c.encode(helpedShare, forKey: .helpedShare)
    }

    /// "halves agree 0.86 on the pool, carry 0.78 of what they teach, help 77 % of its rows (fair)";
    /// with `advice`, what to do about a fair or low one.
    public func text(advice: Bool) -> String {
        var text: String
        if let agreement, let transfer, let helpedShare {
            text = String(format: "halves agree %.2f on the pool, carry %.2f of what they teach to each other, help %.0f %% of its rows (%@",
                          agreement, transfer, helpedShare * 100, verdict)
        } else {
            text = "one context, no halves to compare (\(verdict)"
        }
        if advice {
            switch verdict {
            case "low": text += ": the selection follows what a few Z_val rows or contexts happen to teach; add target rows from more contexts to tov.validation, and check tov.zval_unhelped for rows of another task"
            case "fair": text += ": more target rows from more contexts in tov.validation would make the selection steadier; tov.zval_unhelped lists the rows the rest of Z_val does not help"
            default: break
            }
        }
        return text + ")"
    }
}
