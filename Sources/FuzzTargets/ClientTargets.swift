import CHiredis
import MariaDBClient
import RedisClient
import ScoreStore

/// Addresses operators write, and what Kindred makes of a shard's replies.
enum ClientTargets {
    static func redisURL(_ bytes: UnsafeBufferPointer<UInt8>) -> FuzzTarget.Outcome {
        let text = String(decoding: bytes, as: UTF8.self)
        do {
            let url = try RedisURL(text)
            require((1...65535).contains(url.port) && !url.host.isEmpty, "an accepted URL without a host or port")
            let again = try? RedisURL(url.description)
            require(again == url, "an accepted URL does not survive printing and parsing again")
            return .accepted
        } catch {
            return .rejected(error.description)
        }
    }

    static func mysqlURL(_ bytes: UnsafeBufferPointer<UInt8>) -> FuzzTarget.Outcome {
        let text = String(decoding: bytes, as: UTF8.self)
        do {
            let configuration = try MariaDBConnection.Configuration(url: text)
            let again = try? MariaDBConnection.Configuration(url: configuration.url)
            require(again == configuration, "an accepted URL does not survive printing and parsing again")
            return .accepted
        } catch {
            // Errors say which part is wrong, never the URL (it holds the password).
            let message = "\(error)"
            requireNoEcho(message, text)
            return .rejected(message)
        }
    }

    /// Feeds the bytes to a hiredis reader and walks every reply it yields
    /// the way Kindred does. The first byte picks the score layout's bucket
    /// count (1 to 64) for the set parse.
    ///
    /// Inputs announcing an array of a million elements or more are left
    /// out: hiredis 0.14's reader allocates an array's announced size before
    /// any element arrives (`*790000000` is a 6.3 GB calloc, the fuzzer's
    /// first finding here), which is hiredis's behaviour, not Kindred's
    /// (hiredis 1.0 added a `maxelements` bound). See docs/testing.md's "Fuzzing".
    static func respReply(_ bytes: UnsafeBufferPointer<UInt8>) -> FuzzTarget.Outcome {
        guard let first = bytes.first else { return .rejected("empty") }
        if announcesHugeArray(bytes) { return .rejected("an array of a million elements or more") }
        let layout = ScoreLayout(buckets: Int(first % 64) + 1)
        guard let reader = redisReaderCreate() else { preconditionFailure("redisReaderCreate failed") }
        defer { redisReaderFree(reader) }
        let rest = UnsafeBufferPointer(rebasing: bytes.dropFirst())
        if !rest.isEmpty {
            let fed = rest.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
            guard fed == REDIS_OK else { return .rejected("feed refused") }
        }
        var replies = 0
        while true {
            var raw: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &raw) == REDIS_OK else { return .rejected("protocol error") }
            guard let raw else { break }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            defer { freeReplyObject(raw) }
            replies += 1
            walk(UnsafePointer(reply), layout: layout)
        }
        return replies > 0 ? .accepted : .rejected("incomplete")
    }

    /// True when a `*` is followed by seven digits or more.
    private static func announcesHugeArray(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var digits = -1  // -1: not after a '*'
        for byte in bytes {
            if byte == UInt8(ascii: "*") {
                digits = 0
            } else if digits >= 0, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                digits += 1
                if digits >= 7 { return true }
            } else {
                digits = -1
            }
        }
        return false
    }

    /// Everything Kindred does with a reply: copy it, read it in place, and
    /// parse it as a set's EXEC reply, as a meta hash and as the change
    /// log script's reply.
    private static func walk(_ reply: UnsafePointer<redisReply>, layout: ScoreLayout) {
        let value = RedisValue(copying: reply)
        _ = value.string
        _ = value.errorKind
        _ = try? value.checked(context: "fuzz")
        let raw = UnsafeRawReply(reply)
        require(raw.value == value, "reading in place and copying disagree")
        visit(raw, depth: 0)
        if let meta = ScoreStore.parseMeta(value) {
            _ = meta.floor
        }
        if case .set(let keys, _, _) = ScoreStore.parseSetReply(raw, layout: layout) {
            require(keys.allSatisfy { $0 >> 32 <= 100 }, "a score outside 0.0 ... 10.0")
        }
        // The change log script's reply ({meta, entries}), as a reader with a copy takes it.
        if let parts = value.array, parts.count == 2, let entries = parts[1].array {
            for entry in entries {
                guard let text = entry.string, let change = ScoreStore.SetChange.parse(text) else { continue }
                require((change.tenths ?? 0) <= 100 && (change.previous ?? 0) <= 100, "a logged score outside 0.0 ... 10.0")
            }
            if let meta = ScoreStore.parseMeta(parts[0]) {
                var copy = meta
                copy.changes = meta.changes &- entries.count
                if let changes = ScoreStore.changes(from: copy, to: meta, entries: entries) {
                    require(changes.count == entries.count, "changes taken that are not the entries")
                }
            }
        }
    }

    /// Reads every element and string in place (hiredis nests at most 7 deep).
    private static func visit(_ reply: UnsafeRawReply, depth: Int) {
        require(depth <= 8, "a reply nested deeper than hiredis allows")
        _ = reply.withBytes { $0.count }
        for index in 0..<reply.count {
            reply.withElement(index) { element in
                if let element { visit(element, depth: depth + 1) }
            }
        }
    }
}
