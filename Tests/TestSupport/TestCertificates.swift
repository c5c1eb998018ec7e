import Foundation

/// A throwaway PKI made with the `openssl` command line in a temporary
/// directory: a CA, a server certificate it signed (for the IP address
/// `127.0.0.1` only: `localhost` is a name it does not hold), a client certificate it signed, and an unrelated second CA
/// (the "wrong CA" a client may be given). RSA 2048, valid one day.
///
/// A missing `openssl` binary is a thrown error saying to run
/// `scripts/setup`, never a skip. Cost: ~0.3 s of key generation.
package struct TestCertificates: Sendable {
    package let directory: URL
    package var caCertificate: String { path("ca.pem") }
    package var serverCertificate: String { path("server.pem") }
    package var serverKey: String { path("server-key.pem") }
    package var clientCertificate: String { path("client.pem") }
    package var clientKey: String { path("client-key.pem") }
    /// A CA that signed nothing here.
    package var otherCACertificate: String { path("other-ca.pem") }

    package init() throws {
        let openssl = try locateBinary("openssl", package: "openssl")
        let directory = try makeTemporaryDirectory(prefix: "kindred-tls")
        self.directory = directory
        let run = { (arguments: [String]) throws in try Self.run(openssl, arguments, in: directory) }
        for ca in ["ca", "other-ca"] {
            try run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Kindred test \(ca)",
                     "-keyout", "\(ca)-key.pem", "-out", "\(ca).pem"])
        }
        for (name, subject, extensions) in [
            ("server", "/CN=kindred-test-server", "subjectAltName=IP:127.0.0.1"),
            ("client", "/CN=kindred-client", "extendedKeyUsage=clientAuth"),
        ] {
            try run(["req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", "\(name)-key.pem", "-out", "\(name).csr"])
            try String(extensions + "\n").write(to: directory.appendingPathComponent("\(name).ext"), atomically: true, encoding: .utf8)
            try run(["x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                     "-days", "1", "-extfile", "\(name).ext", "-out", "\(name).pem"])
        }
    }

    /// mariadbd arguments serving TLS with this PKI's server certificate.
    package var mariadbArguments: [String] {
        ["--ssl-ca=\(caCertificate)", "--ssl-cert=\(serverCertificate)", "--ssl-key=\(serverKey)"]
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private static func run(_ executable: String, _ arguments: [String], in directory: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let log = directory.appendingPathComponent("openssl.log")
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw TestSupportError("openssl \(arguments.first ?? "") failed (\(process.terminationStatus)):\n\(output)")
        }
    }
}
