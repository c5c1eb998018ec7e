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
