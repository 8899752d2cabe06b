import Foundation

/// What Linux reports under /proc about a process and the machine: the figures the benchmarks print
/// and the evaluation's costs record, read in one place. Each says what it returns where /proc is
/// not there.
public enum ProcessStats {
    /// VmHWM of process `pid` (this one when nil) in kB: its peak resident set since it started or since
    /// the last ``resetPeakResident(pid:)``; nil where it cannot be read.
    public static func peakResidentKilobytes(pid: Int32? = nil) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid.map(String.init) ?? "self")/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }

    /// Resets VmHWM of `pid` (this process when nil) to its current resident set (writes 5 to
    /// /proc/PID/clear_refs), so the next peak is that of what follows. False where that is not allowed.
    @discardableResult
    public static func resetPeakResident(pid: Int32? = nil) -> Bool {
        (try? "5".write(toFile: "/proc/\(pid.map(String.init) ?? "self")/clear_refs", atomically: false, encoding: .utf8)) != nil
    }

    /// The fields of /proc/PID/stat after the command name (which may hold spaces and parentheses):
    /// the first is field 3 (state), so field n of proc(5) is at index n − 3. Nil when unreadable.
    public static func statFields(pid: Int) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let end = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: end)...].split(separator: " ")
    }

    /// Clock ticks per second, the unit of the CPU times in /proc/PID/stat.
    public static var ticksPerSecond: Double { Double(sysconf(Int32(_SC_CLK_TCK))) }

    /// User + system CPU seconds of process `pid` so far (fields 14 and 15); nil when unreadable.
    public static func cpuSeconds(pid: Int) -> Double? {
        guard let fields = statFields(pid: pid), fields.count > 12,
              let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / ticksPerSecond
    }

    /// The 1, 5 and 15 minute load averages as the kernel prints them, or "?".
    public static func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
    }
}
