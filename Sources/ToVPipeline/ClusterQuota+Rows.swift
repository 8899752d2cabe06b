import Selection

extension ClusterQuota {
    /// A row's cluster, from the text score_dsir weighs: prompt, newline, response.
    public static func cluster(_ row: RowText) -> UInt64 {
        cluster(NgramImportance.text(row))
    }
}
