import Daemon
import Foundation
import Testing

@Suite("systemd credential for the password")
struct SystemdCredentialTests {
    @Test func readsThePasswordFileAndIgnoresItsAbsence() throws {
        let directory = NSTemporaryDirectory() + "tovd-cred-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(SystemdCredential.password(environment: ["CREDENTIALS_DIRECTORY": directory]) == nil)
        try "s3cret pass\n".write(toFile: directory + "/db-password", atomically: true, encoding: .utf8)
        #expect(SystemdCredential.password(environment: ["CREDENTIALS_DIRECTORY": directory]) == "s3cret pass")
        #expect(SystemdCredential.password(environment: [:]) == nil)
        // An explicit PGPASSWORD wins.
        #expect(SystemdCredential.applyPassword(environment: ["CREDENTIALS_DIRECTORY": directory, "PGPASSWORD": "x"]) == false)
    }
}
