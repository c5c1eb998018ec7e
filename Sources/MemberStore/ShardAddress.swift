/// A shard's address: `redis://HOST:PORT`, HOST a hostname or an IPv4
/// literal, PORT 1-65535. Nothing else (no user, password, path or query:
/// credentials never live in the shard list, which every program prints).
///
/// Hostnames are letters, digits and hyphens in dot-separated labels of 1-63
/// characters that neither start nor end with a hyphen, 253 characters at
/// most, and are lower-cased so that one server is not listed twice. A host
/// of digits and dots must be a valid dotted-quad IPv4 address.
public struct ShardAddress: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    /// Parses and normalizes an address.
    /// - Throws: ``MemberStoreError/Code/invalidShardAddress`` saying what is wrong.
    public init(_ text: String) throws {
        func invalid(_ reason: String) -> MemberStoreError {
            MemberStoreError(.invalidShardAddress, "invalid shard address: \(reason) (expected redis://HOST:PORT)")
        }
        let scheme = "redis://"
        guard text.lowercased().hasPrefix(scheme) else { throw invalid("it must start with redis://") }
        let rest = text.dropFirst(scheme.count)
        guard let colon = rest.lastIndex(of: ":") else { throw invalid("the port is missing") }
        let host = rest[..<colon].lowercased()
        let portText = rest[rest.index(after: colon)...]
        guard !host.isEmpty else { throw invalid("the host is missing") }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCIIDigit), portText.count <= 5, let port = Int(portText),
            (1...65535).contains(port)
        else { throw invalid("the port must be a number from 1 to 65535") }
        if host.allSatisfy({ $0.isASCIIDigit || $0 == "." }) {
            guard Self.isIPv4(host) else { throw invalid("the host is not a valid IPv4 address") }
        } else {
            guard Self.isHostname(host) else {
                throw invalid("the host must be a hostname (letters, digits, hyphens, dots) or an IPv4 address")
            }
        }
        self.host = host
        self.port = port
    }

    public var description: String { "redis://\(host):\(port)" }

    static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && (part == "0" || part.first != "0") && Int(part).map { $0 <= 255 } == true
        }
    }

    static func isHostname(_ text: String) -> Bool {
        guard text.count <= 253 else { return false }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCIIDigit || ($0 >= "a" && $0 <= "z") || $0 == "-" }
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { self >= "0" && self <= "9" }
}
