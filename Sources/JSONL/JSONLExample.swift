/// One training row as it travels through JSONL files: `{"prompt", "response", "source"?, "meta"?}`.
///
/// This is the shape of `tov.candidates` / `tov.validation` rows (DESIGN.md §3) without the database columns.
public struct JSONLExample: Codable, Sendable, Hashable {
    /// Text the model conditions on; its tokens carry no loss.
    public var prompt: String
    /// Text whose tokens the loss ℓ(θ, x) averages over.
    public var response: String
    /// Where the row came from (for BIG-bench natural_instructions: the subtask name).
    public var source: String?
    /// Everything else the row carried, as a JSON object.
    public var meta: [String: JSONValue]?

    public init(prompt: String, response: String, source: String? = nil, meta: [String: JSONValue]? = nil) {
        self.prompt = prompt
        self.response = response
        self.source = source
        self.meta = meta
    }
}
