#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension RedisURL {
    /// The TCP endpoints the host resolves to (`getaddrinfo`), as
    /// `address:port` strings (`127.0.0.1:7101`, `[::1]:7101`). Blocks on DNS.
    ///
    /// Two URLs whose sets intersect name the same server when their ports
    /// match: `redis://localhost:7101` and `redis://127.0.0.1:7101`.
    ///
    /// - Throws: ``RedisURLError`` when the name does not resolve.
    package func resolvedEndpoints() throws(RedisURLError) -> Set<String> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw RedisURLError("\(server): cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var endpoints = Set<String>()
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if let address = current.pointee.ai_addr {
                let family = Int32(address.pointee.sa_family)
                let ok: Bool
                if family == AF_INET {
                    ok = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet in
                        var raw = inet.pointee.sin_addr
                        return inet_ntop(AF_INET, &raw, &text, socklen_t(text.count)) != nil
                    }
                } else if family == AF_INET6 {
                    ok = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { inet6 in
                        var raw = inet6.pointee.sin6_addr
                        return inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count)) != nil
                    }
                } else {
                    ok = false
                }
                if ok {
                    let numeric = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    endpoints.insert(family == AF_INET6 ? "[\(numeric)]:\(port)" : "\(numeric):\(port)")
                }
            }
            entry = current.pointee.ai_next
        }
        return endpoints
    }
}
