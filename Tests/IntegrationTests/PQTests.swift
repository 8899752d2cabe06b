import EmbeddedPostgres
import Foundation
import PQ
import Testing
import TovTesting

@Suite("PQ client against a real server")
struct PQTests {
    func withConnection<T>(_ body: (Connection, String) async throws -> T) async throws -> T {
        try await TestDatabase.withFreshDatabase { conninfo in
            let connection = try await Connection.connect(conninfo, applicationName: "pq-tests")
            defer { connection.close() }
            return try await body(connection, conninfo)
        }
    }

    @Test func bindsAndDecodesEveryType() async throws {
        try await withConnection { c, _ in
            let text = "quote ' double \" backslash \\ unicode 世界 🙂 newline\n tab\t"
            let allBytes = (0...255).map(UInt8.init)
            let row = try await c.query("""
                SELECT $1::bigint, $2::int, $3::float8, $4::real, $5::bool, $6::text, $7::bytea, $8::text IS NULL,
                       $9::bigint[], $10::real[], $11::text[], $12::float8
                """, [Int64.max, Int32.min, 0.1, Float(1.5), true, text, allBytes, nil as Int?,
                      [Int64(1), -2, 3], [Float(0.25), -1e-5, 3e20], ["a,b", "{x}", "NULL", "q\"\\"], Double.nan]).first!
            #expect(try row.get(Int64.self, 0) == Int64.max)
            #expect(try row.get(Int32.self, 1) == Int32.min)
            #expect(try row.get(Double.self, 2) == 0.1)
            #expect(try row.get(Float.self, 3) == 1.5)
            #expect(try row.get(Bool.self, 4))
            #expect(try row.get(String.self, 5) == text)
            #expect(try row.get([UInt8].self, 6) == allBytes)
            #expect(try row.get(Bool.self, 7))
            #expect(try row.get([Int64].self, 8) == [1, -2, 3])
            #expect(try row.get([Float].self, 9) == [0.25, -1e-5, 3e20])
            #expect(try row.get([String].self, 10) == ["a,b", "{x}", "NULL", "q\"\\"])
            #expect(try row.get(Double.self, 11).isNaN)
            #expect(throws: PQError.self) { try row.get(Int.self, 5) }
            #expect(throws: PQError.self) { try row.get(Int.self, 99) }
        }
    }

    /// bytea as checkpoints use it: megabytes each way, exact; hex in either case; text that is not
    /// bytea hex is refused with the column's name.
    @Test func largeByteaRoundTripsAndBadHexIsRefused() async throws {
        try await withConnection { c, _ in
            var generator = SystemRandomNumberGenerator()
            let big = (0..<2_000_001).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let row = try await c.query(#"SELECT $1::bytea AS big, '\xABcd'::text AS upper, '\xzz'::text AS bad, '\x0'::text AS odd"#,
                                        [big]).first!
            #expect(try row.get([UInt8].self, "big") == big)
            #expect(try row.get([UInt8].self, "upper") == [0xAB, 0xCD])
            for column in ["bad", "odd"] {
                #expect(throws: PQError.self) { try row.get([UInt8].self, column) }
            }
        }
    }

    /// An empty array of a non-byte type is an empty array, not an empty bytea (an `as? [UInt8]`
    /// cast succeeds on any empty array).
    @Test func emptyArraysKeepTheirType() async throws {
        try await withConnection { c, _ in
            let row = try await c.query("SELECT cardinality($1::bigint[]), cardinality($2::text[]), octet_length($3::bytea)",
                                        [[Int64](), [String](), [UInt8]()]).first!
            #expect(try row.get(Int32.self, 0) == 0)
            #expect(try row.get(Int32.self, 1) == 0)
            #expect(try row.get(Int32.self, 2) == 0)
        }
    }

    @Test func nullsAndNamedColumns() async throws {
        try await withConnection { c, _ in
            let row = try await c.query("SELECT NULL::int AS missing, 7 AS present").first!
            #expect(row.isNull(0))
            #expect(try row.getOptional(Int.self, "missing") == nil)
            #expect(try row.get(Int.self, "present") == 7)
            #expect(throws: PQError.self) { try row.get(Int.self, "missing") }
        }
    }

    /// Reading by name: independent of column order, and every failure names the column (a missing
    /// name lists the ones the result has), never the value.
    @Test func byNameReadsAreOrderFreeAndErrorsNameTheColumn() async throws {
        try await withConnection { c, _ in
            let rows = try await c.query("SELECT 'secret value' AS text_col, 42::bigint AS n, NULL::int AS absent")
            let row = try #require(rows.first)
            #expect(try row.get(Int64.self, "n") == 42)
            #expect(try row.get(String.self, "text_col") == "secret value")
            #expect(try row.isNull("absent") && !(try row.isNull("n")))
            #expect(try row.getOptional(Int32.self, "absent") == nil)
            let reordered = try #require(try await c.query("SELECT NULL::int AS absent, 42::bigint AS n, 'x' AS text_col").first)
            #expect(try reordered.get(Int64.self, "n") == 42)

            func message(_ body: () throws -> Void) -> String {
                do { try body(); return "no error" } catch let error as PQError { return error.message } catch { return "\(error)" }
            }
            let missing = message { _ = try row.get(Int64.self, "nn") }
            #expect(missing.contains("no column named \"nn\"") && missing.contains("text_col, n, absent"), "\(missing)")
            #expect(message { _ = try row.isNull("nn") }.contains("\"nn\""))
            #expect(message { _ = try row.getOptional(Int64.self, "nn") }.contains("\"nn\""))
            let null = message { _ = try row.get(Int32.self, "absent") }
            #expect(null.contains("\"absent\" is NULL"), "\(null)")
            let undecodable = message { _ = try row.get(Int64.self, "text_col") }
            #expect(undecodable.contains("column \"text_col\"") && !undecodable.contains("secret"), "\(undecodable)")
        }
    }

    @Test func sqlStateOnConstraintViolation() async throws {
        try await withConnection { c, _ in
            try await c.simpleQuery("CREATE TABLE t (id int PRIMARY KEY)")
            try await c.execute("INSERT INTO t VALUES ($1)", [1])
            do {
                try await c.execute("INSERT INTO t VALUES ($1)", [1])
                Issue.record("expected a unique violation")
            } catch let error as PQError {
                #expect(error.sqlState == .uniqueViolation)
                #expect(error.code == .queryFailed)
                #expect(!error.isConnectionProblem)
                #expect(c.isConnected)
            }
        }
    }

    @Test func transactionsCommitAndRollBack() async throws {
        try await withConnection { c, _ in
            try await c.simpleQuery("CREATE TABLE t (v int)")
            try await c.transaction { tx in try await tx.execute("INSERT INTO t VALUES (1)") }
            await #expect(throws: PQError.self) {
                try await c.transaction { tx in
                    try await tx.execute("INSERT INTO t VALUES (2)")
                    try await tx.execute("SELECT 1/0")
                }
            }
            #expect(try await c.query("SELECT count(*) FROM t").first!.get(Int.self, 0) == 1)
        }
    }

    @Test func copyInAndOut() async throws {
        try await withConnection { c, _ in
            try await c.simpleQuery("CREATE TABLE t (id int, s text)")
            let copied = try await c.copyIn("COPY t FROM STDIN") { send in
                for chunk in 0..<10 {
                    var data: [UInt8] = []
                    for i in 0..<1000 { data += Array("\(chunk * 1000 + i)\trow \\\\ \(i)\n".utf8) }
                    try await send(data)
                }
            }
            #expect(copied == 10_000)
            var rows = 0
            try await c.copyOut("COPY (SELECT id FROM t ORDER BY id) TO STDOUT") { _ in rows += 1 }
            #expect(rows == 10_000)
            #expect(try await c.query("SELECT s FROM t WHERE id = 5").first!.get(String.self, 0) == "row \\ 5")
        }
    }

    @Test func listenDeliversNotificationsFromOtherSessions() async throws {
        try await withConnection { listener, conninfo in
            try await listener.listen("tov test channel")
            let stream = listener.notifications()
            let sender = try await Connection.connect(conninfo)
            defer { sender.close() }
            try await sender.execute("SELECT pg_notify($1, $2)", ["tov test channel", "payload 1"])
            try await sender.execute("SELECT pg_notify($1, $2)", ["tov test channel", "payload 2"])
            var received: [String] = []
            for try await note in stream {
                received.append(note.payload)
                #expect(note.channel == "tov test channel")
                #expect(note.pid == sender.backendPID)
                if received.count == 2 { break }
            }
            #expect(received == ["payload 1", "payload 2"])
            // Queries still run on a listening connection.
            #expect(try await listener.query("SELECT 42").first!.get(Int.self, 0) == 42)
        }
    }

    @Test func advisoryLocksAreExclusiveAcrossSessions() async throws {
        try await withConnection { a, conninfo in
            let b = try await Connection.connect(conninfo)
            defer { b.close() }
            #expect(try await a.tryAdvisoryLock(42))
            #expect(try await !b.tryAdvisoryLock(42))
            #expect(try await a.advisoryUnlock(42))
            #expect(try await b.tryAdvisoryLock(42))
        }
    }

    /// Blocking libpq calls run on each connection's own thread, not on the cooperative pool: six
    /// connections can all be blocked in the server at once, more than the pool has threads on a small
    /// machine. The event is the server's own view (six sessions waiting on one lock), not a wall-clock
    /// bound, so a loaded machine cannot fail it. Were the calls on the pool, the waiters would starve
    /// the poll itself: the time limit turns that hang into a failure.
    @Test(.timeLimit(.minutes(2))) func blockedQueriesOnSixConnectionsWaitAtOnce() async throws {
        try await TestDatabase.withFreshDatabase { conninfo in
            let holder = try await Connection.connect(conninfo, applicationName: "pq-holder")
            defer { holder.close() }
            var connections: [Connection] = []
            for _ in 0..<6 { connections.append(try await Connection.connect(conninfo, applicationName: "pq-waiter")) }
            defer { connections.forEach { $0.close() } }
            try await holder.query("SELECT pg_advisory_lock(4242)")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for c in connections { group.addTask { try await c.query("SELECT pg_advisory_xact_lock_shared(4242)") } }
                // Not `try`: the lock must be released below whatever the poll does, or the waiters never return.
                let allWaiting = (try? await TovTestDatabase.eventually(timeout: .seconds(30)) {
                    try await TovTestDatabase.count("pg_stat_activity", on: holder,
                                                    where: "application_name = 'pq-waiter' AND wait_event_type = 'Lock'") == 6
                }) ?? false
                #expect(allWaiting, "six blocked queries were never in the server at the same time")
                try await holder.query("SELECT pg_advisory_unlock(4242)")
                try await group.waitForAll()
            }
        }
    }

    @Test func cancelInterruptsALongQuery() async throws {
        try await withConnection { c, conninfo in
            let task = Task { try await c.query("SELECT pg_sleep(30)") }
            // The event: the server runs the query (cancelling before it arrives would cancel nothing).
            let watcher = try await Connection.connect(conninfo)
            defer { watcher.close() }
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(10)) {
                try await TovTestDatabase.count("pg_stat_activity", on: watcher, where: "pid = \(c.backendPID) AND query LIKE '%pg_sleep(30)%' AND state = 'active'") == 1
            })
            c.cancel()
            do {
                _ = try await task.value
                Issue.record("expected a cancellation error")
            } catch let error as PQError {
                #expect(error.sqlState == .queryCanceled)
            }
            #expect(try await c.query("SELECT 1").first!.get(Int.self, 0) == 1)
        }
    }

    @Test func terminatedBackendIsAConnectionError() async throws {
        try await withConnection { victim, conninfo in
            let admin = try await Connection.connect(conninfo)
            defer { admin.close() }
            try await admin.execute("SELECT pg_terminate_backend($1)", [victim.backendPID])
            // The event: the backend is gone (pg_terminate_backend only signals it).
            #expect(try await TovTestDatabase.eventually(timeout: .seconds(10)) {
                try await TovTestDatabase.count("pg_stat_activity", on: admin, where: "pid = \(victim.backendPID)") == 0
            })
            do {
                try await victim.query("SELECT 1")
                Issue.record("expected a connection error")
            } catch let error as PQError {
                #expect(error.isConnectionProblem, "\(error)")
            }
            #expect(!victim.isConnected)
        }
    }

    @Test func connectFailsClearlyAndRetriesUntilTheServerIsUp() async throws {
        let directory = "/var/tmp/tovd-pq-retry-\(UUID().uuidString.prefix(8))"
        let cluster = LocalCluster(directory: directory, port: 5433)
        defer {
            try? cluster.stop(mode: .immediate)
            try? FileManager.default.removeItem(atPath: directory)
        }
        await #expect(throws: PQError.self) { try await Connection.connect(cluster.conninfo) }
        let (attempts, attemptFailed) = AsyncStream<Void>.makeStream()
        let connecting = Task { () -> (Connection, Int) in
            var failures = 0
            let connection = try await Connection.connect(
                cluster.conninfo, retry: RetryPolicy(initialDelay: .milliseconds(50), maxDelay: .milliseconds(200)),
                onAttemptFailed: { _, error in
                    #expect(error.code == .connectionFailed)
                    failures += 1
                    attemptFailed.yield()
                })
            return (connection, failures)
        }
        // The event: two attempts failed while the server is down; then it comes up.
        var failed = attempts.makeAsyncIterator()
        _ = await failed.next()
        _ = await failed.next()
        try cluster.start(fast: true)
        let (connection, failures) = try await connecting.value
        defer { connection.close() }
        #expect(try await connection.query("SELECT 1").first!.get(Int.self, 0) == 1)
        #expect(failures >= 1)
    }
}

/// Connection failures against a cluster of the test's own: a crash, and logins that no retry can fix.
@Suite("PQ connection failures")
struct PQConnectionFailureTests {
    /// After an immediate shutdown (a crash) the first query on an idle session fails with a message
    /// libpq makes up ("server closed the connection unexpectedly", no SQLSTATE). It must count as a
    /// lost connection at once, or callers wait on a dead session for another round.
    @Test func firstQueryAfterAServerCrashIsAConnectionProblem() async throws {
        try await TestDatabase.withPrivateCluster("pq-crash") { cluster, conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            #expect(try await c.query("SELECT 1").first!.get(Int.self, 0) == 1)
            try await Task.detached {
                try cluster.stop(mode: .immediate)
                try cluster.start(fast: true)
            }.value
            do {
                try await c.query("SELECT 1")
                Issue.record("expected the first query after the crash to fail")
            } catch let error as PQError {
                #expect(error.isConnectionProblem, "\(error)")
            }
            #expect(!c.isConnected)
        }
    }

    @Test func everyConnectionHasKeepalivesUnlessTheConninfoSetsThem() async throws {
        try await TestDatabase.withFreshDatabase { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            #expect(try await c.option("keepalives") == "1")
            #expect(try await c.option("keepalives_idle") == "10")
            #expect(try await c.option("tcp_user_timeout") == "25000")
            let own = try await Connection.connect(conninfo + " keepalives_idle=77 tcp_user_timeout=1234")
            defer { own.close() }
            #expect(try await own.option("keepalives_idle") == "77")
            #expect(try await own.option("tcp_user_timeout") == "1234")
            #expect(try await own.option("keepalives_count") == "3")
        }
    }

    /// JIT is off in every session (a status view compiled on every read cost the daemon's box ~20 %);
    /// a conninfo's own `options` replace ours.
    @Test func everySessionRunsWithoutJITUnlessTheConninfoSaysOtherwise() async throws {
        try await TestDatabase.withFreshDatabase { conninfo in
            let c = try await Connection.connect(conninfo)
            defer { c.close() }
            #expect(try await c.query("SHOW jit").first?.get(String.self, "jit") == "off")
            let own = try await Connection.connect(conninfo + " options='-c jit=on'")
            defer { own.close() }
            #expect(try await own.query("SHOW jit").first?.get(String.self, "jit") == "on")
        }
    }

    /// A password with `%`, `@` and `:`: libpq quotes parts of a URI it cannot parse (the password,
    /// or the whole URI), and none of it may reach an error text. Wrong passwords, unknown roles and
    /// databases and unparseable strings are permanent: the retrying connect throws at once.
    @Test func loginErrorsArePermanentAndNeverQuoteThePassword() async throws {
        try await TestDatabase.withPrivateCluster("pq-password") { cluster, conninfo in
            let password = "pa%ss@wo:rd"
            let encoded = "pa%25ss%40wo%3Ard"
            try await TestDatabase.requirePassword(role: "tovpw", password: password, in: cluster, admin: conninfo)
            let socket = cluster.home, port = cluster.port
            func keywords(_ pw: String, user: String = "tovpw", database: String = "postgres") -> String {
                "host=\(socket) port=\(port) user=\(user) dbname=\(database) password='\(pw)'"
            }
            func uri(_ pw: String, database: String = "postgres") -> String {
                "postgresql://tovpw:\(pw)@/\(database)?host=\(socket)&port=\(port)"
            }
            func connectError(_ conninfo: String) async -> PQError? {
                do {
                    let c = try await Connection.connect(conninfo)
                    c.close()
                    return nil
                } catch { return error as? PQError }
            }
            let fragments = ["pa%ss", "pa%25ss", "wo:rd", "wo%3Ard", "ss@wo", "ss%40wo"]
            let cases: [(String, String, PQError.Code, String)] = [
                ("wrong password, keywords", keywords(password + "!"), .connectionRejected, "password authentication failed"),
                ("wrong password, URI", uri(encoded + "%21"), .connectionRejected, "password authentication failed"),
                ("unknown database", uri(encoded, database: "nosuchdb"), .connectionRejected, "does not exist"),
                ("unknown role", keywords(password, user: "nosuchrole"), .connectionRejected, "does not exist"),
                ("password not percent-encoded", uri(password), .badConninfo, "percent-encoded"),
                ("URI cut off", "postgresql://tovpw:\(encoded)@[::1", .badConninfo, "IPv6"),
                ("unknown URI parameter", uri(encoded) + "&bogus=1", .badConninfo, "bogus"),
            ]
            for (name, conninfo, code, phrase) in cases {
                guard let error = await connectError(conninfo) else {
                    Issue.record("\(name): connected")
                    continue
                }
                let texts = ["\(error)", String(reflecting: error)]
                #expect(error.code == code && error.isPermanent && !error.isConnectionProblem, "\(name): \(error)")
                #expect(texts[0].contains(phrase), "\(name): \(error)")
                for text in texts {
                    for fragment in fragments { #expect(!text.contains(fragment), "\(name) leaks \(fragment): \(text)") }
                }
                var attempts = 0
                await #expect(throws: PQError.self, "\(name)") {
                    try await Connection.connect(conninfo, retry: RetryPolicy(initialDelay: .milliseconds(10)), onAttemptFailed: { _, _ in attempts += 1 })
                }
                #expect(attempts == 0, "\(name): retried \(attempts) times")
            }
            // The right password, in both spellings.
            for conninfo in [keywords(password), uri(encoded)] {
                let c = try await Connection.connect(conninfo)
                defer { c.close() }
                #expect(try await c.query("SELECT current_user::text").first!.get(String.self, 0) == "tovpw")
            }
        }
    }
}
