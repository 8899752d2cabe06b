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

    /// The largest `rows` budget: the bound `tov.setting_is_valid` applies too (Int32.max, far above
    /// any pool one PostgreSQL table holds, and exact in every arithmetic the selection uses).
    public static let maxRows = Int(Int32.max)

    /// Parses `{"fraction": 0.05}` or `{"rows": 10000}` (the `tov.settings` value of `budget`).
    ///
    /// Numbers are decoded strictly: `rows` must be an integer (2.5, "5" and true are refused, never
    /// rounded), from 0 to ``maxRows``; `fraction` a number in (0, 1].
    public init(json: String) throws {
        do {
            self = try JSONDecoder().decode(Wire.self, from: Data(json.utf8)).budget
        } catch let error as SelectionError {
            throw error
        } catch {
            throw SelectionError("budget must be {\"fraction\": f} with 0 < f ≤ 1 or {\"rows\": n} with n a whole number from 0 to \(Self.maxRows); got \(json)")
        }
    }

    /// The JSON object, read key by key so that an extra or unknown key is refused.
    private struct Wire: Decodable {
        var budget: Budget

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let object = try decoder.container(keyedBy: Key.self)
            guard object.allKeys.count == 1, let key = object.allKeys.first else {
                throw SelectionError("budget must have exactly one key, \"fraction\" or \"rows\"")
            }
            switch key.stringValue {
            case "fraction":
                let f = try object.decode(Double.self, forKey: key)
                guard f > 0, f <= 1 else { throw SelectionError("budget fraction must be a number in (0, 1]; got \(f)") }
                budget = .fraction(f)
            case "rows":
                let n = try object.decode(Int.self, forKey: key)
                guard (0...Budget.maxRows).contains(n) else {
                    throw SelectionError("budget rows must be a whole number from 0 to \(Budget.maxRows); got \(n)")
                }
                budget = .rows(n)
            default:
                throw SelectionError("budget needs a \"fraction\" or a \"rows\" key; got \"\(key.stringValue)\"")
            }
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
