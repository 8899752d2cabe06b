import CLibPQ
import Foundation

/// What `Connection.connect` does with a connection string before libpq dials: it checks the syntax,
/// knows the secrets in it so no error message can carry them, and adds the TCP settings every tovd
/// connection needs.
enum Conninfo {
    /// Sent before the caller's conninfo, so any of these the caller sets wins (libpq keeps the last
    /// value of a repeated keyword, and the caller's string is expanded after these).
    ///
    /// Without them a peer that vanishes (host down, cable cut, a firewall dropping the flow) is noticed
    /// only when the kernel gives up: about two hours for an idle socket, 15 minutes for unacknowledged
    /// data. With them an idle connection to a dead server fails after 10 s + 3 × 5 s = 25 s, a connection
    /// with unacknowledged data after `tcp_user_timeout` = 25 s, and a connect attempt after 10 s.
    /// Unix-socket connections ignore all but `connect_timeout`.
    static let tcpDefaults: [(key: String, value: String)] = [
        ("connect_timeout", "10"),
        ("keepalives", "1"),
        ("keepalives_idle", "10"),
        ("keepalives_interval", "5"),
        ("keepalives_count", "3"),
        ("tcp_user_timeout", "25000"),
    ]

    /// Server settings for every tovd session, sent the same way (a caller's own `options` wins).
    ///
    /// `jit=off`: tovd's statements are short and index-driven, and the planner's guesses for its small,
    /// rarely analyzed tables (tov.targets, tov.target_zval) can push a status view's estimated cost
    /// past `jit_above_cost`; the server then compiles it on every call. Measured: tov.target_status
    /// took 48 ms with JIT and 0.6 ms without on a quiet server, ~250 ms under load, and
    /// `tovd bench daemon`'s twice-a-second status read cost the burn-down ~20 % on 2 cores.
    static let sessionDefaults: [(key: String, value: String)] = [
        ("options", "-c jit=off"),
    ]

    /// libpq's own rule for "this is a connection string, not just a database name".
    static func isConnectionString(_ conninfo: String) -> Bool {
        conninfo.hasPrefix("postgresql://") || conninfo.hasPrefix("postgres://") || conninfo.contains("=")
    }

    /// Parses `conninfo` as libpq will, throwing ``PQError/Code/badConninfo`` (redacted) when it cannot,
    /// and returns the values of its password-type options.
    static func check(_ conninfo: String) throws -> [String] {
        guard isConnectionString(conninfo) else { return [] }
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errorMessage) else {
            let text = errorMessage.map { String(cString: $0) } ?? "out of memory parsing the connection string"
            if let errorMessage { PQfreemem(errorMessage) }
            throw PQError(.badConninfo, redact(text.trimmingCharacters(in: .whitespacesAndNewlines), in: conninfo)
                + "; fix the connection string (in a postgresql:// URI, percent-encode special characters: % as %25, @ as %40)")
        }
        defer { PQconninfoFree(options) }
        var secrets: [String] = []
        var option = options
        while option.pointee.keyword != nil {
            if let display = option.pointee.dispchar, String(cString: display) == "*", let value = option.pointee.val {
                secrets.append(String(cString: value))
            }
            option += 1
        }
        return secrets
    }

    /// `message` with every password-like part of `conninfo` replaced, however libpq quoted it: raw,
    /// percent-decoded, or cut at an `@` (libpq ends a URI's user info at the first one).
    static func redact(_ message: String, in conninfo: String, known: [String] = []) -> String {
        var result = message
        for secret in Set(known + secrets(in: conninfo)).filter({ !$0.isEmpty }).sorted(by: { $0.count > $1.count }) {
            result = result.replacingOccurrences(of: secret, with: "********")
        }
        return result
    }

    /// Password candidates found in the text of `conninfo`, parseable or not.
    static func secrets(in conninfo: String) -> [String] {
        var found: [String] = []
        func add(_ raw: Substring) {
            guard !raw.isEmpty else { return }
            found.append(String(raw))
            if let decoded = raw.removingPercentEncoding { found.append(decoded) }
        }
        for prefix in ["postgresql://", "postgres://"] where conninfo.hasPrefix(prefix) {
            let rest = conninfo.dropFirst(prefix.count)
            if let lastAt = rest.lastIndex(of: "@"), let colon = rest[..<lastAt].firstIndex(of: ":") {
                let password = rest[rest.index(after: colon)..<lastAt]
                add(password)
                var cut = password.startIndex
                while let at = password[cut...].firstIndex(of: "@") {
                    add(password[..<at])
                    cut = password.index(after: at)
                }
            }
            // ?password=... in the query part.
            if let query = rest.firstIndex(of: "?") {
                for pair in rest[rest.index(after: query)...].split(separator: "&") where pair.hasPrefix("password=") {
                    add(pair.dropFirst("password=".count))
                }
            }
        }
        // Keyword form: password=value or password='quoted \' value'.
        var index = conninfo.startIndex
        while let range = conninfo.range(of: "password", range: index..<conninfo.endIndex) {
            index = range.upperBound
            var cursor = range.upperBound
            while cursor < conninfo.endIndex, conninfo[cursor] == " " { cursor = conninfo.index(after: cursor) }
            guard cursor < conninfo.endIndex, conninfo[cursor] == "=" else { continue }
            cursor = conninfo.index(after: cursor)
            while cursor < conninfo.endIndex, conninfo[cursor] == " " { cursor = conninfo.index(after: cursor) }
            guard cursor < conninfo.endIndex else { break }
            if conninfo[cursor] == "'" {
                var value = ""
                var i = conninfo.index(after: cursor)
                let start = i
                while i < conninfo.endIndex, conninfo[i] != "'" {
                    if conninfo[i] == "\\", conninfo.index(after: i) < conninfo.endIndex { i = conninfo.index(after: i) }
                    value.append(conninfo[i])
                    i = conninfo.index(after: i)
                }
                add(conninfo[start..<i])
                found.append(value)
            } else {
                let end = conninfo[cursor...].firstIndex(where: { $0 == " " || $0 == "\t" || $0 == "\n" }) ?? conninfo.endIndex
                add(conninfo[cursor..<end])
            }
        }
        return found
    }

    /// Failed logins that no retry can fix: the server (or libpq) refused these credentials or this
    /// database outright. Matched on the text because libpq exposes no SQLSTATE for a failed connect;
    /// a server with a non-English `lc_messages` therefore falls back to retrying.
    static func isRejection(_ message: String) -> Bool {
        let permanent = [
            "authentication failed for user",   // 28P01 password, peer, ident, ...
            "no pg_hba.conf entry for",          // 28000
            "is not permitted to log in",        // 28000 NOLOGIN role
            "does not exist",                    // 28000 role, 3D000 database
            "permission denied for database",    // 42501 no CONNECT privilege
            "no password supplied",              // libpq: the server wants one and none was given
            "password is too long",
            "invalid port number", "invalid integer value", "invalid sslmode value", "invalid value for parameter",
            "but SSL was required", "server does not support SSL",
        ]
        return permanent.contains { message.contains($0) }
    }
}
