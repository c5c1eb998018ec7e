import RedisClient

/// A shard's address as the shard list stores it:
///
///     redis://HOST:PORT[/DB]
///     redis://:PASSWORD@HOST:PORT[/DB]
///     redis://USER:PASSWORD@HOST:PORT[/DB]
///
/// HOST a hostname or an IPv4 literal, PORT 1-65535 (required), DB a
/// database number (default 0); USER and PASSWORD percent-encoded as in
/// ``RedisURL``. Nothing else (no query, no IPv6 literal).
///
/// Hostnames are letters, digits and hyphens in dot-separated labels of 1-63
/// characters that neither start nor end with a hyphen, 253 characters at
/// most, and are lower-cased so that one server is not listed twice. A host
/// of digits and dots must be a valid dotted-quad IPv4 address.
///
/// A Redis Cluster is one shard, listed by one of its nodes (a seed: the
/// others are learned from it) as `redis+cluster://[USER:PASSWORD@]HOST:PORT`
/// (``isCluster``; database 0 only).
///
/// Secrets: the shards table stores ``stored`` (the password included,
/// percent-encoded: every program needs it to connect); ``description`` and
/// everything printed redact it (`redis://kindred:***@10.0.0.5:7000/2`).
/// docs/managed-servers.md says how to keep the table's copy safe.
package struct ShardAddress: Sendable, Hashable, CustomStringConvertible {
    /// Host (lower-cased), port, user, password, database.
    package let url: RedisURL
    /// The address is a Redis Cluster node: the shard is the whole cluster.
    package let isCluster: Bool

    package var host: String { url.host }
    package var port: Int { url.port }
    package var database: Int { url.database }

    /// The server a shard lives on, credentials aside: two addresses with the
    /// same identity are one shard.
    package var identity: String { "\(host):\(port)/\(database)" }

    /// Parses and normalizes an address.
    /// - Throws: ``MemberStoreError/Code/invalidShardAddress`` saying what is
    ///   wrong (never repeating a password).
    package init(_ text: String) throws {
        func invalid(_ reason: String) -> MemberStoreError {
            MemberStoreError(
                .invalidShardAddress,
                "invalid shard address: \(reason) (expected redis://[USER:PASSWORD@]HOST:PORT[/DB] or redis+cluster://[USER:PASSWORD@]HOST:PORT)")
        }
        let scheme = "redis://"
        let clusterScheme = "redis+cluster://"
        let lowered = text.lowercased()
        isCluster = lowered.hasPrefix(clusterScheme)
        guard isCluster || lowered.hasPrefix(scheme) else { throw invalid("it must start with redis:// or redis+cluster://") }
        let normalized = scheme + text.dropFirst(isCluster ? clusterScheme.count : scheme.count)
        let parsed: RedisURL
        do {
            parsed = try RedisURL(normalized)
        } catch {
            throw invalid(error.reason)
        }
        // The port is required: the authority (after any user info, before any path) ends in :PORT.
        var authority = normalized.dropFirst(scheme.count)
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        if let slash = authority.firstIndex(of: "/") { authority = authority[..<slash] }
        guard !authority.hasPrefix("[") else { throw invalid("IPv6 literals are not accepted; use a hostname") }
        guard authority.contains(":") else { throw invalid("the port is missing") }
        let host = parsed.host.lowercased()
        if host.allSatisfy({ $0.isASCIIDigit || $0 == "." }) {
            guard Self.isIPv4(host) else { throw invalid("the host is not a valid IPv4 address") }
        } else {
            guard Self.isHostname(host) else {
                throw invalid("the host must be a hostname (letters, digits, hyphens, dots) or an IPv4 address")
            }
        }
        if isCluster, parsed.database != 0 { throw invalid("a Redis Cluster has only database 0") }
        url = RedisURL(host: host, port: parsed.port, user: parsed.user, password: parsed.password, database: parsed.database)
        guard stored.utf8.count <= 255 else { throw invalid("it is longer than 255 characters") }
    }

    /// The password redacted: `redis://user:***@host:port/2`
    /// (`redis+cluster://...` for a cluster).
    package var description: String { withScheme(url.description) }

    /// What the shards table holds: the URL with the password, for
    /// connecting. Never print it.
    package var stored: String { withScheme(url.urlIncludingPassword) }

    private func withScheme(_ text: String) -> String {
        isCluster ? "redis+cluster://" + text.dropFirst("redis://".count) : text
    }

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
