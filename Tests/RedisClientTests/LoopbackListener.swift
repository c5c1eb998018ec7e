import Foundation

/// A bare TCP listener on 127.0.0.1 with no Redis behind it: the kernel
/// completes a client's handshake, which is all a connect needs, so tests can
/// open a `RedisConnection` to it and then misbehave as a server would.
/// Used inside exit tests, where starting a real server would leave it behind.
struct LoopbackListener {
    let socket: Int32
    let port: Int

    /// Listens with room for `backlog` connections not yet accepted.
    init(backlog: Int32 = 8) {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let status = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(socket, pointer, length) | listen(socket, backlog) | getsockname(socket, pointer, &length)
            }
        }
        precondition(socket >= 0 && status == 0, "cannot listen on 127.0.0.1: errno \(errno)")
        self.socket = socket
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Accepts the oldest pending connection and closes it at once, like a
    /// server that died: the client is sent a FIN.
    func acceptAndClose() {
        let connection = accept(socket, nil, nil)
        precondition(connection >= 0, "accept failed: errno \(errno)")
        close(connection)
    }
}
