/// The fuzz targets: each parser of outside input, behind one entry point
/// that takes arbitrary bytes. Two callers run them: the `kindred-fuzz`
/// executable (libFuzzer, built only by `scripts/fuzz`, see docs/testing.md's
/// "Fuzzing"), and the `FuzzTests` test target, which replays every input
/// saved under `Tests/FuzzCorpus/<target>/` (seeds, minimized corpus and
/// crashes) through the same entry point.
///
/// A target returns what the parser made of the input. Besides "no crash on
/// any input", each checks what should hold of every answer (a round trip
/// of what it accepts; an error that names the problem and does not repeat
/// the input) and traps with `preconditionFailure` when it does not, so the
/// fuzzer reports a broken property like a crash.
package enum FuzzTarget: String, CaseIterable, Sendable {
    /// `JSONReader`: any JSON value (syntax, strict UTF-8, nesting limit).
    case jsonReader = "json-reader"
    /// `MemberParser`: one import line against a fixed 8-question survey.
    case memberLine = "member-line"
    /// `SurveyFormat`: a survey file.
    case survey
    /// `Timestamp.parse`: RFC 3339 UTC timestamps.
    case rfc3339
    /// `RedisURL`: `redis://[USER:PASSWORD@]HOST[:PORT][/DB]`.
    case redisURL = "redis-url"
    /// `MariaDBConnection.Configuration(url:)`: `mysql://...`.
    case mysqlURL = "mysql-url"
    /// `ShardAddress`: a shard's address as `kindred shards add` takes it
    /// and the shards table stores it (`redis://` or `redis+cluster://`,
    /// the port required, a hostname or IPv4 host).
    case shardAddress = "shard-address"
    /// RESP bytes through hiredis's reader, then Kindred's walk of the reply
    /// trees: `RedisValue(copying:)`, `UnsafeRawReply`, and the score
    /// store's parsing of a set and its meta.
    case respReply = "resp-reply"
    /// The web backend's hand-written parameter parsing: member ids in
    /// paths, `offset`/`limit` in queries, the browse page's cookie.
    case webParameters = "web-parameters"
    /// `ConfigFileCheck`: a config file (strict JSON, known keys, value types).
    case configFile = "config-file"

    /// What a target made of one input.
    package enum Outcome: Sendable, Equatable {
        case accepted
        /// Refused with this message (it names the problem).
        case rejected(String)
    }

    /// Runs the target on `data`.
    @discardableResult
    package func run(_ data: UnsafeRawBufferPointer) -> Outcome {
        let bytes = data.bindMemory(to: UInt8.self)
        switch self {
        case .jsonReader: return FormatTargets.jsonReader(bytes)
        case .memberLine: return FormatTargets.memberLine(bytes)
        case .survey: return FormatTargets.survey(bytes)
        case .rfc3339: return FormatTargets.timestamp(bytes)
        case .redisURL: return ClientTargets.redisURL(bytes)
        case .mysqlURL: return ClientTargets.mysqlURL(bytes)
        case .shardAddress: return ClientTargets.shardAddress(bytes)
        case .respReply: return ClientTargets.respReply(bytes)
        case .webParameters: return WebTargets.parameters(bytes)
        case .configFile: return ConfigTargets.configFile(bytes)
        }
    }

    /// Runs the target on `bytes`.
    @discardableResult
    package func run(_ bytes: [UInt8]) -> Outcome {
        bytes.withUnsafeBytes { run($0) }
    }
}

/// Traps (a finding for the fuzzer) when a property does not hold.
@inline(__always)
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { preconditionFailure(message()) }
}

/// Traps when an error message repeats a long input: errors must name the
/// problem, never echo what was sent (it may be member data or a password).
func requireNoEcho(_ message: String, _ input: String) {
    require(input.count < 12 || !message.contains(input), "the error repeats the input")
}
