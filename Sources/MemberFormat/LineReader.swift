#if canImport(Glibc)
import Glibc
#endif

/// A file that could not be read or written: the path and the system's reason.
package struct FileError: Error, Sendable, Hashable, CustomStringConvertible {
    package let path: String
    package let reason: String
    package init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    package var description: String { "\(path): \(reason)" }

    static func errno(_ path: String) -> FileError {
        FileError(path: path, reason: String(cString: strerror(Glibc.errno)))
    }
}

/// Reads a file line by line through one large reusable buffer, handing out
/// each line (without `\n` or a trailing `\r`) as bytes with its 1-based line
/// number. A line longer than the buffer grows it. `-` reads standard input.
package final class LineReader {
    package let path: String
    private let fd: Int32
    private var buffer: UnsafeMutableRawBufferPointer
    private let ownsDescriptor: Bool

    package init(path: String, bufferSize: Int = 1 << 22) throws(FileError) {
        self.path = path
        if path == "-" {
            fd = STDIN_FILENO
            ownsDescriptor = false
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FileError.errno(path) }
            ownsDescriptor = true
        }
        buffer = .allocate(byteCount: bufferSize, alignment: 16)
    }

    deinit {
        buffer.deallocate()
        if ownsDescriptor { close(fd) }
    }

    /// Calls `body` for every line, in order. Stops at the first error `body` throws.
    package func forEachLine<E: Error>(
        _ body: (UnsafeBufferPointer<UInt8>, Int) throws(E) -> Void
    ) throws(LineReaderError<E>) {
        var filled = 0
        var lineNumber = 0
        var atEOF = false
        while !atEOF {
            if filled == buffer.count {
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 16)
                bigger.copyMemory(from: UnsafeRawBufferPointer(buffer))
                buffer.deallocate()
                buffer = bigger
            }
            let n = read(fd, buffer.baseAddress! + filled, buffer.count - filled)
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw .file(FileError.errno(path))
            }
            if n == 0 { atEOF = true }
            filled += n
            let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            var start = 0
            while start < filled {
                let remaining = filled - start
                guard let newline = memchr(base + start, 0x0A, remaining) else { break }
                let end = UnsafeMutableRawPointer(newline).assumingMemoryBound(to: UInt8.self) - base
                lineNumber += 1
                do { try body(Self.trimmed(base + start, end - start, first: lineNumber == 1), lineNumber) } catch {
                    throw .body(error)
                }
                start = end + 1
            }
            if atEOF && start < filled {
                lineNumber += 1
                do { try body(Self.trimmed(base + start, filled - start, first: lineNumber == 1), lineNumber) } catch {
                    throw .body(error)
                }
                start = filled
            }
            if start > 0 {
                (buffer.baseAddress! + 0).copyMemory(from: buffer.baseAddress! + start, byteCount: filled - start)
                filled -= start
            }
        }
    }

    /// Drops a trailing `\r` and, on the first line, a UTF-8 byte order mark.
    private static func trimmed(_ start: UnsafeMutablePointer<UInt8>, _ count: Int, first: Bool) -> UnsafeBufferPointer<UInt8> {
        var p = UnsafePointer(start)
        var n = count
        if n > 0 && p[n - 1] == 0x0D { n -= 1 }
        if first && n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF {
            p += 3
            n -= 3
        }
        return UnsafeBufferPointer(start: p, count: n)
    }

    /// Reads a whole file.
    package static func contents(of path: String) throws(FileError) -> [UInt8] {
        let reader = try LineReader(path: path, bufferSize: 1 << 16)
        var bytes: [UInt8] = []
        var first = true
        do {
            try reader.forEachLine { (line: UnsafeBufferPointer<UInt8>, _) throws(FileError) in
                if !first { bytes.append(0x0A) }
                first = false
                bytes.append(contentsOf: line)
            }
        } catch {
            switch error {
            case .file(let e), .body(let e): throw e
            }
        }
        return bytes
    }
}

/// An error from ``LineReader/forEachLine(_:)``: reading failed, or the body threw.
package enum LineReaderError<Body: Error>: Error {
    case file(FileError)
    case body(Body)
}

extension UnsafeBufferPointer<UInt8> {
    /// True for a line of only spaces and tabs.
    var isBlank: Bool { allSatisfy { $0 == 0x20 || $0 == 0x09 } }
}
