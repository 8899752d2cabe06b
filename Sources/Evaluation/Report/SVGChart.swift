import Foundation

/// Minimal inline-SVG charts for ``HTMLReport``: axes with "nice" ticks, line plots with error bars, bar
/// charts and histograms. Output is deterministic text; every coordinate is finite (non-finite data is dropped).
struct SVGChart {
    struct Point {
        var x: Double
        var y: Double
        var err: Double = 0
    }

    struct Series {
        var name: String
        var color: String
        var points: [Point]
        var dashed = false
    }

    struct Bar {
        var label: String
        var value: Double
        var color: String
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    var width = 540.0
    var height = 340.0
    var left = 64.0, right = 150.0, top = 34.0, bottom = 52.0
    var title: String
    var xLabel: String
    var yLabel: String
    /// Category labels drawn slanted (set by ``barChart`` when they would not fit their slots side by side).
    var slantLabels = false

    var plotW: Double { width - left - right }
    var plotH: Double { height - top - bottom }

    // MARK: - Scales and ticks

    /// 1-2-5 ticks covering [lo, hi].
    static func niceTicks(_ lo: Double, _ hi: Double, count: Int = 6) -> [Double] {
        guard lo.isFinite, hi.isFinite, hi > lo else { return [lo.isFinite ? lo : 0] }
        let raw = (hi - lo) / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var t = (lo / step).rounded(.down) * step
        var ticks: [Double] = []
        while t <= hi + step * 1e-9 {
            if t >= lo - step * 1e-9 { ticks.append(abs(t) < step * 1e-9 ? 0 : t) }
            t += step
        }
        return ticks
    }

    static func padded(_ values: [Double], includeZero: Bool = false) -> (Double, Double) {
        var v = values.filter(\.isFinite)
        if includeZero { v.append(0) }
        guard var lo = v.min(), var hi = v.max() else { return (0, 1) }
        if hi == lo { lo -= abs(lo) * 0.1 + 0.5; hi += abs(hi) * 0.1 + 0.5 }
        let pad = (hi - lo) * 0.08
        return (includeZero && lo >= 0 ? lo : lo - pad, includeZero && hi <= 0 ? hi : hi + pad)
    }

    static func tickLabel(_ t: Double, log: Bool) -> String {
        if log { return Fmt.lr(t) }
        if t == 0 { return "0" }
        let a = abs(t)
        if a >= 1000 || a < 0.01 { return String(format: "%.1e", t) }
        if a >= 10 { return String(format: "%.0f", t) }
        if a >= 1 { return String(format: "%.2g", t) == String(format: "%.0f", t) ? String(format: "%.0f", t) : String(format: "%.1f", t) }
        return String(format: "%.2f", t)
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func f(_ x: Double) -> String { String(format: "%.1f", x.isFinite ? x : 0) }

    // MARK: - Frame

    /// Opening tag, title, axes, gridlines and tick labels; `sx`/`sy` map data to pixels.
    func frame(xTicks: [Double], xLog: Bool, xLabels: [String]? = nil, yTicks: [Double],
               sx: (Double) -> Double, sy: (Double) -> Double) -> [String] {
        var s: [String] = []
        s.append("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Self.f(width)) \(Self.f(height))\" width=\"\(Self.f(width))\" height=\"\(Self.f(height))\" role=\"img\" aria-label=\"\(Self.esc(title))\">")
        s.append("<rect x=\"0\" y=\"0\" width=\"\(Self.f(width))\" height=\"\(Self.f(height))\" fill=\"#fff\"/>")
        s.append("<text x=\"\(Self.f(left))\" y=\"20\" class=\"ct\">\(Self.esc(title))</text>")
        for t in yTicks {
            let y = sy(t)
            s.append("<line x1=\"\(Self.f(left))\" y1=\"\(Self.f(y))\" x2=\"\(Self.f(left + plotW))\" y2=\"\(Self.f(y))\" class=\"grid\"/>")
            s.append("<text x=\"\(Self.f(left - 6))\" y=\"\(Self.f(y + 4))\" text-anchor=\"end\" class=\"tl\">\(Self.tickLabel(t, log: false))</text>")
        }
        for (i, t) in xTicks.enumerated() {
            let x = sx(t)
            s.append("<line x1=\"\(Self.f(x))\" y1=\"\(Self.f(top + plotH))\" x2=\"\(Self.f(x))\" y2=\"\(Self.f(top + plotH + 5))\" class=\"axis\"/>")
            let label = xLabels.map { i < $0.count ? $0[i] : "" } ?? Self.tickLabel(t, log: xLog)
            if slantLabels {
                let y = top + plotH + 14
                s.append("<text x=\"\(Self.f(x))\" y=\"\(Self.f(y))\" text-anchor=\"end\" transform=\"rotate(-35 \(Self.f(x)) \(Self.f(y)))\" class=\"tl\">\(Self.esc(label))</text>")
            } else {
                s.append("<text x=\"\(Self.f(x))\" y=\"\(Self.f(top + plotH + 18))\" text-anchor=\"middle\" class=\"tl\">\(Self.esc(label))</text>")
            }
        }
        s.append("<line x1=\"\(Self.f(left))\" y1=\"\(Self.f(top + plotH))\" x2=\"\(Self.f(left + plotW))\" y2=\"\(Self.f(top + plotH))\" class=\"axis\"/>")
        s.append("<line x1=\"\(Self.f(left))\" y1=\"\(Self.f(top))\" x2=\"\(Self.f(left))\" y2=\"\(Self.f(top + plotH))\" class=\"axis\"/>")
        s.append("<text x=\"\(Self.f(left + plotW / 2))\" y=\"\(Self.f(height - 10))\" text-anchor=\"middle\" class=\"al\">\(Self.esc(xLabel))</text>")
        s.append("<text transform=\"translate(16 \(Self.f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\" class=\"al\">\(Self.esc(yLabel))</text>")
        return s
    }

    func legend(_ items: [(name: String, color: String, dashed: Bool)]) -> [String] {
        var s: [String] = []
        for (i, item) in items.enumerated() {
            let y = top + 8 + Double(i) * 18
            let x = left + plotW + 14
            let dash = item.dashed ? " stroke-dasharray=\"5 3\"" : ""
            s.append("<line x1=\"\(Self.f(x))\" y1=\"\(Self.f(y))\" x2=\"\(Self.f(x + 20))\" y2=\"\(Self.f(y))\" stroke=\"\(item.color)\" stroke-width=\"2.5\"\(dash)/>")
            s.append("<text x=\"\(Self.f(x + 26))\" y=\"\(Self.f(y + 4))\" class=\"lg\">\(Self.esc(item.name))</text>")
        }
        return s
    }

    // MARK: - Charts

    /// Lines with markers and ±err bars; `references` are horizontal dashed lines across the plot.
    func linePlot(_ series: [Series], references: [(name: String, y: Double, color: String)] = [], xLog: Bool) -> String {
        let pts = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite && (!xLog || $0.x > 0) }
        let xs = pts.map { xLog ? log10($0.x) : $0.x }
        var (xlo, xhi) = (xs.min() ?? 0, xs.max() ?? 1)
        if xhi == xlo { xlo -= 0.5; xhi += 0.5 }
        let xpad = (xhi - xlo) * 0.06
        xlo -= xpad; xhi += xpad
        let ys = pts.flatMap { [$0.y - ($0.err.isFinite ? $0.err : 0), $0.y + ($0.err.isFinite ? $0.err : 0)] }
            + references.map(\.y).filter(\.isFinite)
        let (ylo, yhi) = Self.padded(ys)
        let sx: (Double) -> Double = { v in left + ((xLog ? log10(v) : v) - xlo) / (xhi - xlo) * plotW }
        let sy: (Double) -> Double = { v in top + (1 - (v - ylo) / (yhi - ylo)) * plotH }
        let xTicks: [Double] = xLog
            ? Array(Set(pts.map(\.x))).sorted()
            : Self.niceTicks(xlo, xhi)
        var s = frame(xTicks: xTicks, xLog: xLog, yTicks: Self.niceTicks(ylo, yhi), sx: sx, sy: sy)
        for r in references where r.y.isFinite {
            s.append("<line x1=\"\(Self.f(left))\" y1=\"\(Self.f(sy(r.y)))\" x2=\"\(Self.f(left + plotW))\" y2=\"\(Self.f(sy(r.y)))\" stroke=\"\(r.color)\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/>")
        }
        for se in series {
            let p = se.points.filter { $0.x.isFinite && $0.y.isFinite && (!xLog || $0.x > 0) }.sorted { $0.x < $1.x }
            guard !p.isEmpty else { continue }
            let dash = se.dashed ? " stroke-dasharray=\"5 3\"" : ""
            s.append("<polyline fill=\"none\" stroke=\"\(se.color)\" stroke-width=\"2\"\(dash) points=\"" + p.map { "\(Self.f(sx($0.x))),\(Self.f(sy($0.y)))" }.joined(separator: " ") + "\"/>")
            for q in p {
                let x = sx(q.x)
                if q.err.isFinite, q.err > 0 {
                    let y0 = sy(q.y - q.err), y1 = sy(q.y + q.err)
                    s.append("<line x1=\"\(Self.f(x))\" y1=\"\(Self.f(y0))\" x2=\"\(Self.f(x))\" y2=\"\(Self.f(y1))\" stroke=\"\(se.color)\" stroke-width=\"1.2\"/>")
                    for y in [y0, y1] {
                        s.append("<line x1=\"\(Self.f(x - 4))\" y1=\"\(Self.f(y))\" x2=\"\(Self.f(x + 4))\" y2=\"\(Self.f(y))\" stroke=\"\(se.color)\" stroke-width=\"1.2\"/>")
                    }
                }
                s.append("<circle cx=\"\(Self.f(x))\" cy=\"\(Self.f(sy(q.y)))\" r=\"3.2\" fill=\"\(se.color)\"/>")
            }
        }
        s += legend(series.map { ($0.name, $0.color, $0.dashed) } + references.map { ($0.name, $0.color, true) })
        s.append("</svg>")
        return s.joined(separator: "\n")
    }

    /// Vertical bars from zero (negative values go down), value labels on the bars, optional dashed reference.
    func barChart(_ bars: [Bar], reference: (name: String, y: Double)? = nil, valueFormat: (Double) -> String) -> String {
        // Labels wider than their slot (about 6.2 px per character at 11 px) would overlap their
        // neighbours: slant them and grow the chart downwards by the room they need.
        let labelWidth = (bars.map { Double($0.label.count) }.max() ?? 0) * 6.2
        if !slantLabels, labelWidth > 0.95 * plotW / Double(max(bars.count, 1)) {
            var slanted = self
            slanted.slantLabels = true
            let extra = (labelWidth * 0.6).rounded(.up)   // sin 35° of the label's length
            slanted.bottom += extra
            slanted.height += extra
            return slanted.barChart(bars, reference: reference, valueFormat: valueFormat)
        }
        let vals = bars.map(\.value).filter(\.isFinite) + (reference.map { [$0.y] } ?? []).filter(\.isFinite)
        let (ylo, yhi) = Self.padded(vals, includeZero: true)
        let n = max(bars.count, 1)
        let slot = plotW / Double(n)
        let sx: (Double) -> Double = { i in left + (i + 0.5) * slot }
        let sy: (Double) -> Double = { v in top + (1 - (v - ylo) / (yhi - ylo)) * plotH }
        var s = frame(xTicks: bars.indices.map(Double.init), xLog: false, xLabels: bars.map(\.label),
                      yTicks: Self.niceTicks(ylo, yhi), sx: sx, sy: sy)
        let bw = min(slot * 0.6, 60)
        for (i, b) in bars.enumerated() where b.value.isFinite {
            let y0 = sy(0), y1 = sy(b.value)
            s.append("<rect x=\"\(Self.f(sx(Double(i)) - bw / 2))\" y=\"\(Self.f(min(y0, y1)))\" width=\"\(Self.f(bw))\" height=\"\(Self.f(max(abs(y1 - y0), 0.5)))\" fill=\"\(b.color)\"/>")
            let ty = b.value >= 0 ? y1 - 4 : y1 + 12
            s.append("<text x=\"\(Self.f(sx(Double(i))))\" y=\"\(Self.f(ty))\" text-anchor=\"middle\" class=\"vl\">\(Self.esc(valueFormat(b.value)))</text>")
        }
        s.append("<line x1=\"\(Self.f(left))\" y1=\"\(Self.f(sy(0)))\" x2=\"\(Self.f(left + plotW))\" y2=\"\(Self.f(sy(0)))\" stroke=\"#444\" stroke-width=\"1\"/>")
        if let r = reference, r.y.isFinite {
            s.append("<line x1=\"\(Self.f(left))\" y1=\"\(Self.f(sy(r.y)))\" x2=\"\(Self.f(left + plotW))\" y2=\"\(Self.f(sy(r.y)))\" stroke=\"#555\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/>")
            s += legend([(r.name, "#555", true)])
        }
        s.append("</svg>")
        return s.joined(separator: "\n")
    }

    /// Bars touching each other over the histogram's edges.
    func histogram(_ h: Histogram, color: String) -> String {
        guard h.edges.count == h.counts.count + 1, !h.counts.isEmpty,
              let lo = h.edges.first, let hi = h.edges.last, lo.isFinite, hi.isFinite, hi > lo else {
            return frame(xTicks: [], xLog: false, yTicks: [], sx: { $0 }, sy: { $0 }).joined(separator: "\n") + "\n</svg>"
        }
        let ymax = Double(h.counts.max() ?? 1)
        let (ylo, yhi) = (0.0, ymax > 0 ? ymax * 1.08 : 1)
        let sx: (Double) -> Double = { v in left + (v - lo) / (hi - lo) * plotW }
        let sy: (Double) -> Double = { v in top + (1 - (v - ylo) / (yhi - ylo)) * plotH }
        var s = frame(xTicks: Self.niceTicks(lo, hi), xLog: false, yTicks: Self.niceTicks(ylo, yhi), sx: sx, sy: sy)
        for (i, c) in h.counts.enumerated() where c > 0 {
            let x0 = sx(h.edges[i]), x1 = sx(h.edges[i + 1])
            s.append("<rect x=\"\(Self.f(x0))\" y=\"\(Self.f(sy(Double(c))))\" width=\"\(Self.f(max(x1 - x0 - 1, 0.5)))\" height=\"\(Self.f(sy(0) - sy(Double(c))))\" fill=\"\(color)\"/>")
        }
        if lo < 0, hi > 0 {
            s.append("<line x1=\"\(Self.f(sx(0)))\" y1=\"\(Self.f(top))\" x2=\"\(Self.f(sx(0)))\" y2=\"\(Self.f(top + plotH))\" stroke=\"#444\" stroke-dasharray=\"3 3\"/>")
        }
        s.append("</svg>")
        return s.joined(separator: "\n")
    }
}
