import Foundation

/// The database password as a systemd credential (`LoadCredential=db-password:/etc/tovd/db-password`),
/// so it need not sit in the environment file or the unit. systemd exposes the file under
/// `$CREDENTIALS_DIRECTORY`; libpq takes a password from `PGPASSWORD` when the conninfo has none.
public enum SystemdCredential {
    public static let passwordName = "db-password"

    /// The password from `$CREDENTIALS_DIRECTORY/db-password`, without a trailing newline, if present.
    public static func password(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty,
              let text = try? String(contentsOfFile: directory + "/" + passwordName, encoding: .utf8) else { return nil }
        let password = text.trimmingCharacters(in: .newlines)
        return password.isEmpty ? nil : password
    }

    /// Sets `PGPASSWORD` from the credential unless it is already set. Call before connecting.
    /// Returns whether a credential was applied (never the password itself: it is not logged).
    @discardableResult
    public static func applyPassword(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard environment["PGPASSWORD"] == nil, let password = password(environment: environment) else { return false }
        setenv("PGPASSWORD", password, 1)
        return true
    }
}
