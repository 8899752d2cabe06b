// The C `stdout` is a mutable global to Swift 6, which refuses to read it. The C runtime sets it
// before main and nothing here reassigns it, so this one file reads it, and only it, unchecked.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
@preconcurrency import Darwin
#endif

/// The process's C stdout stream, which `print` writes through.
enum StandardOutput {
    /// Line-buffers stdout, so progress and results show through a pipe (`| tee`) as they are printed.
    static func lineBuffered() { setlinebuf(stdout) }

    /// Writes out what `print` buffered.
    static func flush() { fflush(stdout) }
}
