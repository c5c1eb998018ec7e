#if canImport(Glibc)
import Glibc
#endif
import MemberFormat

/// The checks a config file passes before swift-configuration reads it:
/// strict JSON (RFC 8259: no comments, no trailing commas, no duplicate
/// keys, nothing truncated) with the line and column of the first problem,
/// and no key Kindred does not know, with the nearest known key suggested.
///
/// swift-configuration's JSON reader is lenient about none of this in a
/// way an operator can see: a misspelt key is silently ignored and the
/// default used. Messages never quote the file's bytes (it holds secrets),
/// only key names.
package enum ConfigFileCheck {
    /// Checks `bytes`, the contents of the file at `path`.
    package static func check(
        _ bytes: [UInt8], path: String, knownKeys: Set<String>, integerKeys: Set<String> = KindredConfiguration.Key.integers
    ) throws(ConfigurationError) {
        let keys: JSONDocument.ObjectKeys
        do {
            keys = try bytes.withUnsafeBufferPointer { buffer throws(JSONDocument.Problem) in try JSONDocument.objectKeys(buffer) }
        } catch {
            let (line, column) = position(of: error.offset, in: bytes)
            throw ConfigurationError(
                "\(path) is not valid JSON: line \(line), column \(column): \(error.message)\(hint(at: error.offset, in: bytes))")
        }
        for key in keys.keys where !knownKeys.contains(key.name) {
            let (line, column) = position(of: key.offset, in: bytes)
            var message = "unknown key \"\(key.name)\" in \(path) (line \(line), column \(column))"
            if let near = nearest(key.name, in: knownKeys) {
                message += "; did you mean \"\(near)\"?"
            } else {
                message += "; the keys are \(knownKeys.sorted().joined(separator: ", "))"
            }
            throw ConfigurationError(message)
        }
        // Every setting is a string or an integer: a value of another type would
        // be read as missing and the default used without a word.
        for (key, kind) in zip(keys.keys, keys.kinds) {
            let want: JSONDocument.ValueKind = integerKeys.contains(key.name) ? .integer : .string
            guard kind != want else { continue }
            let (line, column) = position(of: key.offset, in: bytes)
            throw ConfigurationError("\"\(key.name)\" in \(path) (line \(line), column \(column)) must be \(want), not \(kind)")
        }
    }

    /// Reads and checks the file at `path`.
    package static func check(path: String, knownKeys: Set<String>) throws(ConfigurationError) {
        try check(try read(path), path: path, knownKeys: knownKeys)
    }

    /// The file's bytes, or an error naming the path and the system's reason.
    static func read(_ path: String) throws(ConfigurationError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ConfigurationError("cannot read the config file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ConfigurationError("cannot read the config file \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
            guard bytes.count <= 1 << 20 else { throw ConfigurationError("the config file \(path) is larger than 1 MiB") }
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    static func position(of offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        for byte in bytes[..<min(offset, bytes.count)] {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1  // continuation bytes do not start a character
            }
        }
        return (line, column)
    }

    /// What the usual mistakes look like at the offending byte.
    static func hint(at offset: Int, in bytes: [UInt8]) -> String {
        guard offset < bytes.count else { return " (the file ends too early: truncated?)" }
        switch bytes[offset] {
        case UInt8(ascii: "/"), UInt8(ascii: "#"): return " (comments are not JSON)"
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
            var index = offset - 1
            while index >= 0, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index -= 1 }
            return index >= 0 && bytes[index] == UInt8(ascii: ",") ? " (a trailing comma)" : ""
        case UInt8(ascii: "'"): return " (JSON strings use double quotes)"
        default: return ""
        }
    }

    /// The known key closest to `key` by edit distance, when close enough
    /// to be a typo (at most 2 edits, or a third of the key's length).
    static func nearest(_ key: String, in known: Set<String>) -> String? {
        let limit = max(2, key.count / 3)
        let lowered = key.lowercased().replacing("-", with: "_")
        let ranked = known.map { ($0, distance(lowered, $0)) }.sorted { ($0.1, $0.0) < ($1.1, $1.0) }
        guard let best = ranked.first, best.1 <= limit else { return nil }
        return best.0
    }

    /// Levenshtein distance over characters.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
