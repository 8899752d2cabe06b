import CKernels
import Foundation

/// Contiguous ranges of a parameter arena, one per training stream, cut at the norm's block
/// boundaries (``tov_block_sum_squares``), for the passes over the whole arena that follow a step's
/// streams: summing their gradients, the norm and AdamW. Each parameter is updated on its own and the
/// norm's blocks are gathered in order, so the split changes no bit of the result.
struct ArenaChunks {
    static let block = Int(TOV_SUM_SQUARES_BLOCK)
    /// The norm's blocks over `count` parameters.
    static func blocks(_ count: Int) -> Int { (count + block - 1) / block }

    let ranges: [Range<Int>]

    init(count: Int, parts: Int) {
        let blocks = Self.blocks(count), parts = max(1, min(parts, blocks))
        let bounds = (0...parts).map { min(count, blocks * $0 / parts * Self.block) }
        ranges = (0..<parts).map { bounds[$0]..<bounds[$0 + 1] }
    }

    /// `body` over every range, concurrently when there are several.
    func run(_ body: (Range<Int>) -> Void) {
        guard ranges.count > 1 else { return ranges.forEach(body) }
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: ranges.count) { body(ranges[$0]) }
    }
}
