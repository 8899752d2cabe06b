import Selection
import Testing
@testable import ToVPipeline

@Suite("U's draw")
struct UDrawTests {
    /// The key is PostgreSQL's md5(seed::text || ':u:' || id::text); expected values from Python's hashlib.
    @Test func keyIsTheSQLHash() {
        #expect(UDraw.key(id: 1, seed: 0) == "3993f4566c6d8356ebf0a2c4916faebd")
        #expect(UDraw.key(id: 42, seed: 7) == "bc57ec4e55550533ec2126c247122c43")
        #expect(UDraw.key(id: 5, seed: -3) == "e88a0cebc96b0c724e2680db950b9c00")
    }

    @Test func drawsTheLowestKeysInIdOrder() {
        let ids = Array(Int64(1)...200).shuffled()
        let u = UDraw.draw(ids: ids, size: 30, seed: 11)
        #expect(u.count == 30 && u == u.sorted())
        let threshold = u.map { UDraw.key(id: $0, seed: 11) }.max()!
        // Every row outside U ranks after every row in U.
        #expect(ids.filter { !u.contains($0) }.allSatisfy { UDraw.key(id: $0, seed: 11) > threshold })
        #expect(UDraw.draw(ids: ids.reversed(), size: 30, seed: 11) == u, "the pool's order does not matter")
        #expect(UDraw.draw(ids: ids, size: 30, seed: 12) != u, "another seed, another U")
        #expect(UDraw.draw(ids: Array(ids.prefix(10)), size: 30, seed: 11) == ids.prefix(10).sorted(), "a small pool is all U")
        let ranked = UDraw.ranked(ids: ids, seed: 11)
        #expect(Set(ranked) == Set(ids) && ranked.prefix(30).sorted() == u, "U heads the ranking")
    }

    /// A rebase on a grown pool keeps every old U row whose rank still fits: new rows only displace.
    @Test func growingThePoolOnlyDisplacesRows() {
        let old = UDraw.draw(ids: Array(1...100), size: 20, seed: 3)
        let new = UDraw.draw(ids: Array(1...150), size: 20, seed: 3)
        #expect(new.filter { $0 <= 100 }.allSatisfy(old.contains))
    }
}
