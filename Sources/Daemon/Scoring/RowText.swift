import ToVPipeline

/// The row and loss types live in the shared pipeline (ToVPipeline), which the evaluation calls too;
/// these names keep the daemon's code and API as they were.
public typealias RowText = ToVPipeline.RowText
public typealias BaseLossRecord = ToVPipeline.BaseLossRecord
