import Foundation
import Selection

/// A seeded sparse random projection (count sketch) of a parameter-sized vector to `dimensions`
/// numbers: coordinate i goes to bucket h(i) with sign s(i). It preserves inner products in
/// expectation (E⟨Px, Py⟩ = ⟨x, y⟩) like LESS's dense Rademacher projection (arXiv 2402.04333 §3.2),
/// at O(P) per vector instead of O(P·d), which is what makes it affordable for every pool row on a CPU.
public struct GradientProjection: Sendable {
    public let dimensions: Int
    let bucket: [Int32]
    let sign: [Float]

    public init(inputSize: Int, dimensions: Int, seed: UInt64) {
        precondition(dimensions >= 1 && inputSize >= 1)
        self.dimensions = dimensions
        var random = SplitMix64(seed: seed)
        var bucket = [Int32](repeating: 0, count: inputSize)
        var sign = [Float](repeating: 0, count: inputSize)
        for i in 0..<inputSize {
            let r = random.next()
            bucket[i] = Int32(truncatingIfNeeded: (r >> 1) % UInt64(dimensions))
            sign[i] = r & 1 == 0 ? 1 : -1
        }
        self.bucket = bucket
        self.sign = sign
    }

    /// P·x, shape (dimensions).
    public func project(_ x: [Float]) -> [Float] {
        precondition(x.count == bucket.count, "projection built for \(bucket.count) inputs, got \(x.count)")
        var out = [Float](repeating: 0, count: dimensions)
        for i in x.indices where x[i] != 0 {
            out[Int(bucket[i])] += sign[i] * x[i]
        }
        return out
    }

    /// Bytes held per projected row (Float32), what a LESS gradient datastore stores.
    public var bytesPerRow: Int { dimensions * MemoryLayout<Float>.size }
}

public enum VectorMath {
    /// ⟨a, b⟩ / (‖a‖‖b‖); 0 when either vector is zero (a row whose loss has no gradient carries no signal).
    public static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in a.indices {
            dot += Double(a[i]) * Double(b[i])
            na += Double(a[i]) * Double(a[i])
            nb += Double(b[i]) * Double(b[i])
        }
        guard na > 0, nb > 0 else { return 0 }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    /// Element-wise mean of equally long vectors.
    public static func mean(_ vectors: [[Float]]) -> [Float] {
        guard let first = vectors.first else { return [] }
        var sum = [Double](repeating: 0, count: first.count)
        for v in vectors { for i in v.indices { sum[i] += Double(v[i]) } }
        return sum.map { Float($0 / Double(vectors.count)) }
    }
}
