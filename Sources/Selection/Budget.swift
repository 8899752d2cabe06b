import Foundation

/// How many rows to select: a fixed count or a fraction of the eligible pool.
public enum Budget: Equatable, Sendable {
    case rows(Int)
    case fraction(Double)

    /// n for a pool of `eligible` rows: rows → min(n, eligible); fraction → ⌊f · eligible⌋.
    /// The same arithmetic (IEEE double, floor) as the SQL selection query.
    public func rowCount(eligible: Int) -> Int {
        switch self {
        case .rows(let n): min(max(n, 0), eligible)
        case .fraction(let f): min(eligible, Int((f * Double(eligible)).rounded(.down)))
        }
    }

    /// Parses `{"fraction": 0.05}` or `{"rows": 10000}` (the `tov.settings` value of `budget`).
    public init(json: String) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], object.count == 1 else {
            throw SelectionError("budget must be a JSON object with exactly one key, {\"fraction\": 0.05} or {\"rows\": 10000}; got \(json)")
        }
        if let f = object["fraction"] {
            guard let n = f as? NSNumber, !(f is Bool), n.doubleValue > 0, n.doubleValue <= 1 else {
                throw SelectionError("budget fraction must be a number in (0, 1]; got \(json)")
            }
            self = .fraction(n.doubleValue)
        } else if let r = object["rows"] {
            guard let n = r as? NSNumber, !(r is Bool), n.doubleValue >= 0, n.doubleValue == n.doubleValue.rounded(), n.doubleValue < 1e15 else {
                throw SelectionError("budget rows must be a whole number ≥ 0; got \(json)")
            }
            self = .rows(n.intValue)
        } else {
            throw SelectionError("budget needs a \"fraction\" or a \"rows\" key; got \(json)")
        }
    }

    public var json: String {
        switch self {
        case .rows(let n): "{\"rows\": \(n)}"
        case .fraction(let f): "{\"fraction\": \(f)}"
        }
    }
}

/// A setting that cannot be used, with a message that says how to fix it.
public struct SelectionError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
