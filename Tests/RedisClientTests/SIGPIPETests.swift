import Foundation
import RedisClient
import Testing

/// A large write to a server that has closed the connection raises SIGPIPE.
/// Each test runs in a child process (an exit test) so that the signal's
/// disposition starts at its default there, whatever the test process set.
/// The limit only catches a hang: a child runs in well under a second, but
/// its parent's part waits its turn among every other test's.
@Suite("SIGPIPE", .timeLimit(.minutes(5)))
struct SIGPIPETests {
    @Test func withoutIgnoringItAWriteToAClosedServerKillsTheProcess() async {
        await #expect(processExitsWith: .signal(SIGPIPE)) {
            signal(SIGPIPE, SIG_DFL)
            writeLargeCommandsToClosedPeers()
            exit(0)  // survived every attempt: the expectation fails
        }
    }

    @Test func ignoreSIGPIPETurnsItIntoABrokenConnection() async {
        await #expect(processExitsWith: .success) {
            signal(SIGPIPE, SIG_DFL)
            RedisClient.ignoreSIGPIPE()
            RedisClient.ignoreSIGPIPE()  // idempotent
            let errors = writeLargeCommandsToClosedPeers()
            exit(errors.count == 5 && errors.allSatisfy(\.isConnectionBroken) ? 0 : 1)
        }
    }
}

/// Five times: connect to a listener, let it accept and close the connection
/// (a FIN, as from a killed server), then send one 8 MB command. The first
/// segments draw a reset; the writes after it raise SIGPIPE. Returns the
/// errors of the attempts the process survived.
@discardableResult
private func writeLargeCommandsToClosedPeers() -> [RedisError] {
    var unblock = sigset_t()
    sigemptyset(&unblock)
    sigaddset(&unblock, SIGPIPE)
    pthread_sigmask(SIG_UNBLOCK, &unblock, nil)

    var command = RedisCommand("SET", "k")
    command.append(bytes: [UInt8](repeating: 0x61, count: 8 << 20))
    var errors: [RedisError] = []
    let listener = LoopbackListener()
    for _ in 0..<5 {
        do {
            let redis = try RedisConnection(host: "127.0.0.1", port: listener.port)
            listener.acceptAndClose()
            _ = try redis.send(command)
        } catch {
            errors.append(error)
        }
    }
    return errors
}
