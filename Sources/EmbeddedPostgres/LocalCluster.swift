import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL cluster in a directory, for development and tests.
///
/// It listens only on a unix socket inside its own directory (no TCP) and trusts local connections,
/// which the directory's 0700 mode limits to its owner (and root). PostgreSQL refuses to run as
/// root, so when tovd runs as root the cluster runs as the `postgres` OS user; if that user cannot
/// reach the directory (say it lies under /root), the cluster lives in `/var/tmp/tovd-pg-<hash>`
/// and `<directory>/LOCATION` records where.
public struct LocalCluster: Sendable {
    public enum StopMode: String, Sendable { case smart, fast, immediate }

    /// The directory the user named (`./.tovd/pg` by default).
    public let directory: String
    /// Only names the socket file (`.s.PGSQL.<port>`); there is no TCP listener.
    public let port: Int

    public init(directory: String, port: Int = 5432) {
        self.directory = URL(fileURLWithPath: directory).standardizedFileURL.path
        self.port = port
    }

    /// Where the cluster really lives (the directory itself, or the place LOCATION points to).
    public var home: String {
        if let location = try? String(contentsOfFile: directory + "/LOCATION", encoding: .utf8) {
            return location.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return directory
    }

    var dataDirectory: String { home + "/data" }
    var socketDirectory: String { home }
    public var logFile: String { home + "/postgres.log" }

    public var conninfo: String { "host=\(socketDirectory) port=\(port) user=postgres dbname=postgres" }

    public var isRunning: Bool {
        guard FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") else { return false }
        return (try? run(tool("pg_ctl"), ["status", "-D", dataDirectory]).status) == 0
    }

    /// Initialises the cluster on first use, starts it if it is not running, and returns its conninfo.
    /// `fast` turns off fsync: for throwaway test clusters only.
    @discardableResult
    public func start(fast: Bool = false) throws -> String {
        try prepareHome()
        if !FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") {
            var arguments = ["-D", dataDirectory, "-U", "postgres", "-E", "UTF8", "--auth-local=trust", "--auth-host=reject"]
            var result = try run(tool("initdb"), arguments + ["--locale=C.UTF-8"])
            if result.status != 0 {
                arguments.append("--no-locale")
                try? FileManager.default.removeItem(atPath: dataDirectory)
                result = try run(tool("initdb"), arguments)
            }
            guard result.status == 0 else {
                throw ClusterError("initdb failed in \(dataDirectory): \(result.output.suffix(800))")
            }
        }
        if isRunning { return conninfo }
        // A test cluster serves every suite at once, each daemon of them with ~8 connections (workers,
        // lease, three leader jobs, listener, reporter): 200 ran out when the suites start together.
        let connections = fast ? 600 : 200
        var options = "-c listen_addresses='' -c unix_socket_directories='\(socketDirectory)' -c port=\(port) -c max_connections=\(connections)"
        if fast { options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off" }
        let result = try run(tool("pg_ctl"), ["start", "-w", "-t", "60", "-D", dataDirectory, "-l", logFile, "-o", options])
        guard result.status == 0 else {
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            throw ClusterError("pg_ctl start failed: \(result.output.suffix(400)) \(log.suffix(800))")
        }
        return conninfo
    }

    // MARK: - The current cluster

    /// Where `tovd dev-db start` puts a cluster when told no directory (relative to the working directory).
    public static let defaultDirectory = ".tovd/pg"
    /// Names the directory of the cluster the last `tovd dev-db start` in this working directory
    /// started, so every other command run from here finds it, `--directory` or not.
    public static let pointerFile = ".tovd/dev-db"

    /// The cluster the last `tovd dev-db start` from this working directory started (``pointerFile``),
    /// else the one in ``defaultDirectory``.
    public static func current() -> LocalCluster {
        if let text = try? String(contentsOfFile: pointerFile, encoding: .utf8) {
            let directory = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !directory.isEmpty { return LocalCluster(directory: directory) }
        }
        return LocalCluster(directory: defaultDirectory)
    }

    /// Records this cluster as the current one for commands run from this working directory.
    public func makeCurrent() throws {
        let pointer = URL(fileURLWithPath: Self.pointerFile)
        do {
            try FileManager.default.createDirectory(at: pointer.deletingLastPathComponent(), withIntermediateDirectories: true)
            try (directory + "\n").write(to: pointer, atomically: true, encoding: .utf8)
        } catch {
            throw ClusterError("cannot record the cluster in \(pointer.path): \(error); other commands will not find it unless DATABASE_URL names it")
        }
    }

    public func stop(mode: StopMode = .fast) throws {
        guard FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") else { return }
        guard isRunning else { return }
        let result = try run(tool("pg_ctl"), ["stop", "-w", "-D", dataDirectory, "-m", mode.rawValue])
        guard result.status == 0 else { throw ClusterError("pg_ctl stop failed: \(result.output.suffix(400))") }
    }

    // MARK: - Internals

    static var isRoot: Bool { geteuid() == 0 }

    /// Creates the cluster home with the right owner, choosing a reachable place when run as root.
    func prepareHome() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard Self.isRoot else {
            chmod(directory, 0o700)
            return
        }
        if !fm.fileExists(atPath: directory + "/LOCATION"), !Self.postgresCanReach(directory) {
            var hasher = Hasher1()
            let place = "/var/tmp/tovd-pg-\(hasher.hex(directory))"
            try place.write(toFile: directory + "/LOCATION", atomically: true, encoding: .utf8)
        }
        try fm.createDirectory(atPath: home, withIntermediateDirectories: true)
        _ = try run("/bin/chown", ["-R", "postgres:postgres", home], asPostgres: false)
        chmod(home, 0o700)
    }

    /// Whether the `postgres` user can traverse every parent of `path`.
    static func postgresCanReach(_ path: String) -> Bool {
        (try? LocalCluster(directory: path).run("/usr/bin/test", ["-x", URL(fileURLWithPath: path).deletingLastPathComponent().path])
            .status) == 0
    }

    /// The newest PostgreSQL binary of that name: PATH first, then /usr/lib/postgresql/*/bin.
    func tool(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for version in versions where FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\(version)/bin/\(name)") {
            return "/usr/lib/postgresql/\(version)/bin/\(name)"
        }
        throw ClusterError("\(name) not found: install the PostgreSQL server (apt-get install postgresql-15)")
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), looked up at run time because
    /// Swift's Glibc module does not export it; nil on an older C library, which leaves fds inherited.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// Runs a command (as `postgres` when we are root) and returns its status and combined output.
    ///
    /// Uses posix_spawn and waitpid directly: the server that `pg_ctl start` leaves behind must not
    /// keep us waiting, and its output goes to a file, never to a pipe it could hold open.
    @discardableResult
    func run(_ executable: String, _ arguments: [String], asPostgres: Bool = true) throws -> (status: Int32, output: String) {
        let argv = (asPostgres && Self.isRoot) ? ["/usr/sbin/runuser", "-u", "postgres", "--", executable] + arguments
                                                : [executable] + arguments
        let outputPath = NSTemporaryDirectory() + "tovd-cluster-\(getpid())-\(UUID().uuidString.prefix(8)).out"
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else we hold open may reach the server `pg_ctl start` leaves running: Foundation's
        // Process learns that a child exited when a socket the child inherited closes, so a server
        // holding it made the `tovd dev-db start` that started it look alive for as long as it ran.
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArgs, environ)
        guard spawned == 0 else { throw ClusterError("cannot run \(argv[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // WIFEXITED / WEXITSTATUS, spelled out: the macros are not imported into Swift.
        let exited = (status & 0x7F) == 0
        return (exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F), output)
    }
}

public struct ClusterError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// FNV-1a, to name a fallback directory after a path (stable across runs, unlike Hasher).
struct Hasher1 {
    mutating func hex(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        return String(h, radix: 16)
    }
}
