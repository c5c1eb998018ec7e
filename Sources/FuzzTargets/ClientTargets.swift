import CHiredis
import MariaDBClient
import MemberStore
import RedisClient
import ScoreStore

/// Addresses operators write, and what Kindred makes of a shard's replies.
enum ClientTargets {
    static func redisURL(_ bytes: UnsafeBufferPointer<UInt8>) -> FuzzTarget.Outcome {
        let text = String(decoding: bytes, as: UTF8.self)
        do {
            let url = try RedisURL(text)
            require((1...65535).contains(url.port) && !url.host.isEmpty, "an accepted URL without a host or port")
            let again = try? RedisURL(url.urlIncludingPassword)
            require(again == url, "an accepted URL does not survive printing and parsing again")
            if url.password != nil {
                require(url.description.contains(":***@"), "a URL with a password does not print it redacted")
                requireNoEcho(url.description, url.urlIncludingPassword)
            }
            return .accepted
        } catch {
            // A URL with credentials is never repeated in the error.
            if text.contains("@") { requireNoEcho(error.description, text) }
            return .rejected(error.description)
        }
    }

    /// A shard address: what it accepts is stored and read back as the same
    /// shard (the stored form parses to an equal address), printed with its
    /// password redacted, and its host is lower-cased; what it refuses is an
    /// `invalidShardAddress` error that never repeats the address.
    static func shardAddress(_ bytes: UnsafeBufferPointer<UInt8>) -> FuzzTarget.Outcome {
        let text = String(decoding: bytes, as: UTF8.self)
        do {
            let address = try ShardAddress(text)
            require((1...65535).contains(address.port) && !address.host.isEmpty, "an accepted address without a host or port")
            require(address.host == address.host.lowercased(), "an accepted address keeps an upper-case host")
            require(address.stored.utf8.count <= 255, "an accepted address is longer than the shards table holds")
            let again = try? ShardAddress(address.stored)
            require(again == address, "a stored address does not read back as the same shard")
            if address.url.password != nil {
                require(address.description.contains(":***@"), "an address with a password does not print it redacted")
                requireNoEcho(address.description, address.stored)
            }
            return .accepted
        } catch let error as MemberStoreError {
            require(error.code == .invalidShardAddress, "a refused address is not invalidShardAddress: \(error.code)")
            let message = error.description
            require(message.contains("(expected redis://"), "a refusal does not say what a shard address looks like")
            // Never the address repeated. The message's own words may hold
            // a short input (`dis+cluster://`): a repeat that the message
            // for the input with its letters and digits changed also holds
            // came from those words, not from the input.
            if text.count >= 12, message.contains(text) {
                let changed = String(text.map(changedCharacter))
                var control = ""
                do { _ = try ShardAddress(changed) } catch { control = "\(error)" }
                require(control.contains(text), "the error repeats the address")
            }
            return .rejected(error.description)
        } catch {
            require(false, "a refused address threw something other than MemberStoreError: \(error)")
            return .rejected("\(error)")
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
            requireNoPassword(message, url: text)
            return .rejected(message)
        }
    }

    /// Traps when a MySQL URL error repeats any 4 characters of what may be
    /// the password: everything between the first ':' after `://` and the
    /// last '@' (the widest reading, so a password holding an unencoded
    /// `?`, `/` or `@` counts whole). A window the message also holds when
    /// the password's letters and digits are all changed came from the
    /// message's own words or another part of the URL, not the password.
    static func requireNoPassword(_ message: String, url: String) {
        guard let password = widestPassword(url) else { return }
        let characters = Array(url[password])
        guard characters.count >= 4 else { return }
        let windows = (0...(characters.count - 4)).map { String(characters[$0..<($0 + 4)]) }
        let leaked = windows.filter { message.contains($0) }
        guard !leaked.isEmpty else { return }
        let changed = url[..<password.lowerBound] + String(characters.map(changedCharacter)) + url[password.upperBound...]
        let control: String
        do {
            _ = try MariaDBConnection.Configuration(url: String(changed))
            control = ""
        } catch {
            control = "\(error)"
        }
        for window in leaked {
            require(control.contains(window), "a MySQL URL error repeats part of the password")
        }
    }

    /// Where the password may be: from the first ':' after `://` to the last '@'.
    private static func widestPassword(_ url: String) -> Range<String.Index>? {
        guard let scheme = url.firstRange(of: "://"), let at = url.lastIndex(of: "@"), at >= scheme.upperBound else {
            return nil
        }
        guard let colon = url[scheme.upperBound..<at].firstIndex(of: ":") else { return nil }
        return url.index(after: colon)..<at
    }

    /// Another letter or digit in the same class (a hex digit stays one, so
    /// percent-escapes keep their shape); anything else unchanged.
    private static func changedCharacter(_ character: Character) -> Character {
        guard let ascii = character.asciiValue else { return character }
        let rotations: [(ClosedRange<UInt8>, UInt8)] = [
            (UInt8(ascii: "0")...UInt8(ascii: "9"), 10), (UInt8(ascii: "a")...UInt8(ascii: "f"), 6),
            (UInt8(ascii: "A")...UInt8(ascii: "F"), 6), (UInt8(ascii: "g")...UInt8(ascii: "z"), 20),
            (UInt8(ascii: "G")...UInt8(ascii: "Z"), 20),
        ]
        for (range, size) in rotations where range.contains(ascii) {
            return Character(Unicode.Scalar(range.lowerBound + (ascii - range.lowerBound + 1) % size))
        }
        return character
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
            if let element = reply.element(index) { visit(element, depth: depth + 1) }
        }
    }
}
