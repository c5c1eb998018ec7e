import MariaDBClient
import TestSupport
import Testing

/// Misuse is a precondition failure. Each case runs in a child process (an
/// exit test) that connects to the shared server by URL; the check reads the
/// child's standard error, so a child that failed for another reason (no
/// connection) does not pass.
@Suite("Misuse stops the process")
struct MisuseTests {
    @Test func useAfterCloseIsAPreconditionFailure() async throws {
        let url = try await onThread { try MariaDBServer.shared().url() }
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            [url = url as String] in
            let connection = try MariaDBConnection(url: url)
            connection.close()
            _ = try? connection.execute("SELECT 1")
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(stderr.contains("connection used after close()"), "\(stderr)")
    }

    @Test func usingTheConnectionWhileStreamingIsAPreconditionFailure() async throws {
        let url = try await onThread { try MariaDBServer.shared().url() }
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            [url = url as String] in
            let connection = try MariaDBConnection(url: url)
            try connection.forEachRow("SELECT 1 UNION ALL SELECT 2") { _ in
                _ = try? connection.query("SELECT 3")
            }
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(stderr.contains("while forEachRow is streaming"), "\(stderr)")
    }

    @Test func rowViewUsedAfterItsCallbackIsAPreconditionFailure() async throws {
        let url = try await onThread { try MariaDBServer.shared().url() }
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            [url = url as String] in
            let connection = try MariaDBConnection(url: url)
            var escaped: RowView?
            try connection.forEachRow("SELECT 1") { escaped = $0 }
            _ = escaped?.int(0)
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(stderr.contains("RowView was used after its forEachRow callback returned"), "\(stderr)")
    }
}
