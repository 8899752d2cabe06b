import Selection
import Testing

@Suite("Budget parsing: the domain tov.setting_is_valid accepts")
struct BudgetParsingTests {
    /// 1e15 rows passed the database's check and was refused here, on every tick. Now both bound
    /// rows by Int32.max; the bound itself parses.
    @Test func rowsUpToInt32Max() throws {
        #expect(try Budget(json: #"{"rows": 2147483647}"#) == .rows(Int(Int32.max)))
        #expect(try Budget(json: #"{"rows": 0}"#) == .rows(0))
        for bad in [#"{"rows": 2147483648}"#, #"{"rows": 1000000000000000}"#, #"{"rows": 99999999999999999999}"#,
                    #"{"rows": 2.5}"#, #"{"rows": true}"#, #"{"rows": null}"#] {
            #expect(throws: SelectionError.self, "\(bad)") { try Budget(json: bad) }
        }
    }

    @Test func fractionsAndShape() throws {
        #expect(try Budget(json: #"{"fraction": 1}"#) == .fraction(1))
        #expect(try Budget(json: #"{"fraction": 0.000000001}"#) == .fraction(1e-9))
        for bad in [#"{"fraction": 1.0000001}"#, #"{"fraction": "0.1"}"#, #"{"fraction": 0.1, "note": 1}"#,
                    #"{"size": 10}"#, "null", "0.05"] {
            #expect(throws: SelectionError.self, "\(bad)") { try Budget(json: bad) }
        }
    }
}
