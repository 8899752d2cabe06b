import Foundation
import Synchronization

/// A one-line progress bar on stderr for long CLI work. On a terminal it redraws in place; when
/// stderr is a file or journald it prints a plain line at most every 5 seconds instead.
/// Updated from training and converter threads: every update runs under `state`'s lock.
final class ProgressBar: Sendable {
    let label: String
    let total: Int?
    let unit: String
    private let started = Date()
    private let interactive = isatty(STDERR_FILENO) == 1
    private struct State {
        var lastDraw = Date.distantPast
        /// The count of the first update: work resumed from disk (e.g. θ0 pretraining at step 1,200)
        /// is not part of the rate.
        var firstDone: Int?
    }
    private let state = Mutex(State())

    init(_ label: String, total: Int?, unit: String = "rows") {
        self.label = label
        self.total = total
        self.unit = unit
    }

    /// Shows `done` (and an optional note such as the current loss); cheap to call often.
    func update(_ done: Int, note: String = "", force: Bool = false) {
        state.withLock { state in draw(done, note: note, force: force, state: &state) }
    }

    private func draw(_ done: Int, note: String, force: Bool, state: inout State) {
        let now = Date()
        let firstDone = state.firstDone ?? done
        state.firstDone = firstDone
        guard force || now.timeIntervalSince(state.lastDraw) >= (interactive ? 0.1 : 5) else { return }
        state.lastDraw = now
        let elapsed = max(now.timeIntervalSince(started), 1e-6)
        let rate = Double(done - firstDone) / elapsed
        var line = "\(label) "
        if let total, total > 0 {
            let fraction = min(Double(done) / Double(total), 1)
            let width = 28
            let filled = Int(fraction * Double(width))
            line += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            line += String(format: "%3.0f%% %d/%d %@", fraction * 100, done, total, unit)
            if rate > 0, done < total { line += " ETA " + Self.duration(Double(total - done) / rate) }
        } else {
            line += "\(done) \(unit)"
        }
        line += String(format: " %.0f %@/s", rate, unit)
        if !note.isEmpty { line += " " + note }
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + line + (interactive ? "" : "\n")).utf8))
    }

    func finish(_ done: Int, note: String = "") {
        update(done, note: note, force: true)
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) : String(format: "%dm%02ds", s / 60, s % 60)
    }
}

/// A bar per stage for work that reports `(stage, done, total)` (`tovd evaluate`, `tovd pretrain`):
/// the stage's text up to " (" names the bar, and the parenthesis after it (loss, held-out best,
/// tokens/s, ...) is shown as its note.
final class StageProgress: Sendable {
    private let bars = Mutex<[String: ProgressBar]>([:])

    func update(_ stage: String, _ done: Int, _ total: Int) {
        let key = stage.components(separatedBy: " (").first ?? stage
        let bar = bars.withLock { bars in
            if let bar = bars[key] { return bar }
            let bar = ProgressBar(key, total: total, unit: Self.unit(of: key))
            bars[key] = bar
            return bar
        }
        bar.update(done, note: stage.contains("(") ? String(stage.drop { $0 != "(" }) : "")
    }

    /// What a stage counts, from its name.
    static func unit(of key: String) -> String {
        if key.hasPrefix("tokenizer") { return "tokens" }
        if key.contains("scoring") || key.contains("gradients") { return "rows" }
        return key.contains("fine-tuning") ? "runs" : "steps"
    }
}
