import Foundation
import Selection

/// A difference of means with its 95 % (or other) confidence interval, and how it was computed.
///
/// Differences are always "baseline − policy" of a loss, so a positive value means the policy's loss is lower
/// (better); ``verdict`` turns the interval into the words a report may use.
public struct Interval: Codable, Sendable, Equatable {
    public enum Method: String, Codable, Sendable {
        /// Student t on per-seed differences (the design pairs arms by seed).
        case paired
        /// Welch's unequal-variance t (independent samples).
        case welch
        /// Percentile bootstrap of the difference of means (independent samples, no normality assumed).
        case bootstrap
    }

    public var estimate: Double
    public var lower: Double
    public var upper: Double
    public var level: Double
    public var method: Method
    /// Pairs (paired) or the smaller sample's size (welch, bootstrap).
    public var n: Int
    /// Degrees of freedom of the t quantile (nil for the bootstrap).
    public var degreesOfFreedom: Double?

    /// What the interval allows a report to say about "policy vs baseline".
    public enum Verdict: String, Codable, Sendable {
        case better, worse, inconclusive = "no difference shown", insufficient = "too few runs"
    }

    public var verdict: Verdict {
        guard lower.isFinite, upper.isFinite else { return .insufficient }
        if lower > 0 { return .better }
        if upper < 0 { return .worse }
        return .inconclusive
    }
}

/// Confidence intervals for differences of means. Reference values in the tests come from SciPy 1.17
/// (`scipy.stats.t.ppf`, `ttest_ind(equal_var=False).confidence_interval`).
extension Stats {
    /// Paired interval of mean(a − b) over index-aligned pairs (non-finite pairs dropped).
    public static func pairedInterval(_ a: [Double], _ b: [Double], level: Double = 0.95) -> Interval {
        let d = zip(a, b).map { $0 - $1 }.filter(\.isFinite)
        let n = d.count
        guard n >= 2 else {
            return Interval(estimate: n == 1 ? d[0] : .nan, lower: .nan, upper: .nan, level: level, method: .paired, n: n, degreesOfFreedom: nil)
        }
        let m = mean(d), se = std(d) / Double(n).squareRoot()
        let df = Double(n - 1)
        let t = studentTQuantile(0.5 + level / 2, degreesOfFreedom: df)
        return Interval(estimate: m, lower: m - t * se, upper: m + t * se, level: level, method: .paired, n: n, degreesOfFreedom: df)
    }

    /// Welch interval of mean(a) − mean(b) (Welch–Satterthwaite degrees of freedom).
    public static func welchInterval(_ a: [Double], _ b: [Double], level: Double = 0.95) -> Interval {
        let a = a.filter(\.isFinite), b = b.filter(\.isFinite)
        let m = mean(a) - mean(b)
        guard a.count >= 2, b.count >= 2 else {
            return Interval(estimate: m, lower: .nan, upper: .nan, level: level, method: .welch, n: min(a.count, b.count), degreesOfFreedom: nil)
        }
        let va = std(a) * std(a) / Double(a.count), vb = std(b) * std(b) / Double(b.count)
        let se = (va + vb).squareRoot()
        guard se > 0 else {
            return Interval(estimate: m, lower: m, upper: m, level: level, method: .welch, n: min(a.count, b.count), degreesOfFreedom: nil)
        }
        let df = (va + vb) * (va + vb) / (va * va / Double(a.count - 1) + vb * vb / Double(b.count - 1))
        let t = studentTQuantile(0.5 + level / 2, degreesOfFreedom: df)
        return Interval(estimate: m, lower: m - t * se, upper: m + t * se, level: level, method: .welch, n: min(a.count, b.count), degreesOfFreedom: df)
    }

    /// Percentile-bootstrap interval of mean(a) − mean(b), resampling each side independently.
    public static func bootstrapInterval(_ a: [Double], _ b: [Double], level: Double = 0.95, resamples: Int = 10_000, seed: UInt64 = 0) -> Interval {
        let a = a.filter(\.isFinite), b = b.filter(\.isFinite)
        let m = mean(a) - mean(b)
        guard a.count >= 2, b.count >= 2 else {
            return Interval(estimate: m, lower: .nan, upper: .nan, level: level, method: .bootstrap, n: min(a.count, b.count), degreesOfFreedom: nil)
        }
        var random = SplitMix64(seed: seed)
        func resampledMean(_ x: [Double]) -> Double {
            var s = 0.0
            for _ in x.indices { s += x[Int(random.next() % UInt64(x.count))] }
            return s / Double(x.count)
        }
        let diffs = (0..<resamples).map { _ in resampledMean(a) - resampledMean(b) }
        let alpha = (1 - level) / 2
        return Interval(estimate: m, lower: quantile(diffs, alpha), upper: quantile(diffs, 1 - alpha), level: level,
                        method: .bootstrap, n: min(a.count, b.count), degreesOfFreedom: nil)
    }

    // MARK: - Student t

    /// P(T ≤ t) for Student's t with `df` degrees of freedom.
    public static func studentTCDF(_ t: Double, degreesOfFreedom df: Double) -> Double {
        let x = df / (df + t * t)
        let tail = 0.5 * regularizedIncompleteBeta(x, a: df / 2, b: 0.5)
        return t >= 0 ? 1 - tail : tail
    }

    /// The p-quantile of Student's t with `df` degrees of freedom (bisection on the CDF, to 1e-12).
    public static func studentTQuantile(_ p: Double, degreesOfFreedom df: Double) -> Double {
        guard p > 0, p < 1, df > 0 else { return .nan }
        if p == 0.5 { return 0 }
        var lo = -1.0, hi = 1.0
        while studentTCDF(lo, degreesOfFreedom: df) > p { lo *= 2 }
        while studentTCDF(hi, degreesOfFreedom: df) < p { hi *= 2 }
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if studentTCDF(mid, degreesOfFreedom: df) < p { lo = mid } else { hi = mid }
            if hi - lo < 1e-12 { break }
        }
        return (lo + hi) / 2
    }

    /// I_x(a, b) by the continued fraction of Numerical Recipes §6.4 (`betai`/`betacf`).
    static func regularizedIncompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logBeta: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let logPowers: Double = a * log(x) + b * log(1 - x)
        let front = exp(logBeta + logPowers)
        // The fraction converges fast for x < (a + 1)/(a + b + 2); use the symmetry otherwise.
        if x < (a + 1) / (a + b + 2) { return front * betaContinuedFraction(x, a: a, b: b) / a }
        return 1 - front * betaContinuedFraction(1 - x, a: b, b: a) / b
    }

    static func betaContinuedFraction(_ x: Double, a: Double, b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...300 {
            let m = Double(m), m2 = 2 * m
            var aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return h
    }
}
