/// The JSON reader's checks on a whole document, for the fuzz targets and
/// their corpus replay (`Sources/FuzzTargets`): `JSONReader` itself stays
/// internal to this module.
package enum JSONDocument {
    /// The deepest nesting the reader accepts.
    package static var maxDepth: Int { JSONReader.maxDepth }

    /// Nil when `bytes` is one JSON value as the import format's reader
    /// accepts it (RFC 8259 syntax, strict UTF-8 strings and keys, at most
    /// ``maxDepth`` levels, whitespace around it); else the error's
    /// description, which names the column.
    package static func problem(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        var reader = JSONReader(bytes)
        var scratch: [UInt8] = []
        do throws(JSONReader.SyntaxError) {
            try reader.skipValue(scratch: &scratch)
            try reader.expectEnd()
            return nil
        } catch {
            return error.description
        }
    }
}

extension JSONDocument {
    /// A JSON object's top-level keys, read with the same strict reader
    /// (RFC 8259: no comments, no trailing commas; strict UTF-8; the depth
    /// limit), for the config file's checks in `KindredConfig`.
    package struct ObjectKeys: Sendable {
        /// Each key with the byte offset of its opening quote, in file order.
        package var keys: [(name: String, offset: Int)]
        /// The kind of each key's value, in the same order.
        package var kinds: [ValueKind] = []
    }

    /// What a value is, as far as a setting's type cares.
    package enum ValueKind: Sendable, Equatable, CustomStringConvertible {
        case string, integer, fraction, bool, null, object, array

        package var description: String {
            switch self {
            case .string: "a string"
            case .integer: "an integer"
            case .fraction: "a number with a fraction or an exponent"
            case .bool: "true or false"
            case .null: "null"
            case .object: "an object"
            case .array: "a list"
            }
        }
    }

    /// A document that is not one JSON object: what is wrong and the byte
    /// offset (0-based) where it was found. The problem never quotes the
    /// bytes (a file may hold secrets).
    package struct Problem: Error, Sendable {
        package var offset: Int
        package var message: String
    }

    /// Reads `bytes` as one JSON object and returns its top-level keys;
    /// throws the first syntax error. A key given twice is an error at its
    /// second occurrence.
    package static func objectKeys(_ bytes: UnsafeBufferPointer<UInt8>) throws(Problem) -> ObjectKeys {
        var reader = JSONReader(bytes)
        var scratch: [UInt8] = []
        var key: [UInt8] = []
        var keys: [(name: String, offset: Int)] = []
        var kinds: [ValueKind] = []
        var seen: Set<String> = []
        var duplicate: (name: String, offset: Int)?
        do throws(JSONReader.SyntaxError) {
            try reader.expect(UInt8(ascii: "{"), "a JSON object ('{')")
            reader.skipWhitespace()
            if reader.position < bytes.count && bytes[reader.position] == UInt8(ascii: "}") {
                try reader.expect(UInt8(ascii: "}"), "'}'")
            } else {
                while true {
                    reader.skipWhitespace()
                    let offset = reader.position
                    guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw reader.error("a key in quotes") }
                    try reader.readString(into: &key)
                    let name = String(decoding: key, as: UTF8.self)
                    if !seen.insert(name).inserted && duplicate == nil { duplicate = (name, offset) }
                    keys.append((name, offset))
                    try reader.expect(UInt8(ascii: ":"), "':'")
                    reader.skipWhitespace()
                    let start = reader.position
                    try reader.skipValue(scratch: &scratch)
                    kinds.append(Self.kind(of: UnsafeBufferPointer(rebasing: bytes[start..<reader.position])))
                    reader.skipWhitespace()
                    guard reader.position < bytes.count else { throw reader.error("',' or '}'") }
                    if bytes[reader.position] == UInt8(ascii: ",") {
                        try reader.expect(UInt8(ascii: ","), "','")
                    } else {
                        try reader.expect(UInt8(ascii: "}"), "',' or '}'")
                        break
                    }
                }
            }
            try reader.expectEnd()
        } catch {
            throw Problem(offset: error.column - 1, message: error.problemText)
        }
        if let duplicate {
            throw Problem(offset: duplicate.offset, message: "the key \"\(duplicate.name)\" is given twice")
        }
        return ObjectKeys(keys: keys, kinds: kinds)
    }

    /// The kind of one value already read as valid JSON.
    static func kind(of value: UnsafeBufferPointer<UInt8>) -> ValueKind {
        guard let first = value.first else { return .null }
        switch first {
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default:
            let fractional = value.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
            return fractional ? .fraction : .integer
        }
    }
}

extension JSONReader.SyntaxError {
    /// The problem without its column.
    var problemText: String {
        switch problem {
        case .expected("end of line"): "expected nothing after the object"
        case .expected(let what): "expected \(what)"
        case .tooDeep: "nested deeper than \(JSONReader.maxDepth) levels"
        case .invalidUTF8: "invalid UTF-8"
        }
    }
}
