import Foundation
import Testing
@testable import Evaluation

/// Reference values from SciPy 1.17: `stats.t.ppf(0.975, df)`, `stats.t.interval` on the differences,
/// and `stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)`.
@Suite struct IntervalTests {
    @Test func studentTQuantilesMatchSciPy() {
        let known: [(Double, Double)] = [(1, 12.70620474), (2, 4.30265273), (4, 2.77644511), (9, 2.26215716), (10, 2.22813885), (30, 2.04227246)]
        for (df, q) in known {
            #expect(abs(Stats.studentTQuantile(0.975, degreesOfFreedom: df) - q) < 1e-7, "df \(df)")
            #expect(abs(Stats.studentTQuantile(0.025, degreesOfFreedom: df) + q) < 1e-7, "df \(df)")
        }
        #expect(abs(Stats.studentTCDF(0, degreesOfFreedom: 3) - 0.5) < 1e-15)
    }

    @Test func pairedIntervalMatchesSciPy() {
        let d = [0.12, -0.05, 0.30, 0.08, 0.15]
        let i = Stats.pairedInterval(d, [Double](repeating: 0, count: 5))
        #expect(abs(i.estimate - 0.12) < 1e-12)
        #expect(abs(i.lower - -0.03681385549990138) < 1e-8)
        #expect(abs(i.upper - 0.27681385549990134) < 1e-8)
        #expect(i.degreesOfFreedom == 4 && i.n == 5 && i.method == .paired)
        #expect(i.verdict == .inconclusive)
        // Shifting every difference up by 0.1 puts the interval above zero.
        #expect(Stats.pairedInterval(d.map { $0 + 0.1 }, [0, 0, 0, 0, 0]).verdict == .better)
        #expect(Stats.pairedInterval([0, 0, 0, 0, 0], d.map { $0 + 0.1 }).verdict == .worse)
        #expect(Stats.pairedInterval([1], [0]).verdict == .insufficient)
    }

    @Test func welchIntervalMatchesSciPy() {
        let x = [2.1, 2.4, 2.2, 2.6, 2.5], y = [2.9, 2.7, 3.4, 3.1, 2.6, 3.0, 3.3]
        let i = Stats.welchInterval(x, y)
        #expect(abs(i.lower - -0.9627593780193942) < 1e-8)
        #expect(abs(i.upper - -0.3172406219806052) < 1e-8)
        #expect(abs(i.degreesOfFreedom! - 9.995921545796273) < 1e-9)
        #expect(i.verdict == .worse)
    }

    @Test func bootstrapCoversTheWelchInterval() {
        let x = [2.1, 2.4, 2.2, 2.6, 2.5], y = [2.9, 2.7, 3.4, 3.1, 2.6, 3.0, 3.3]
        let b = Stats.bootstrapInterval(x, y, seed: 7)
        // The percentile bootstrap is narrower than Welch's t for small n, and centred on the same difference.
        #expect(abs(b.estimate - (Stats.mean(x) - Stats.mean(y))) < 1e-12)
        #expect(b.lower > -0.9627593780193942 && b.upper < -0.3172406219806052)
        #expect(b.lower < b.estimate && b.estimate < b.upper)
        #expect(b == Stats.bootstrapInterval(x, y, seed: 7))
    }
}
