#if canImport(Glibc)
import Glibc
#endif

/// Writes bytes to a file through `write(2)`, creating or truncating it.
/// Writes go to `PATH.partial` and are renamed over `PATH` by ``commit()``,
/// so a reader never sees half a file.
package final class FileWriter {
    package let path: String
    private let temporaryPath: String
    private var fd: Int32

    package init(path: String) throws(FileError) {
        self.path = path
        temporaryPath = path + ".partial"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError.errno(temporaryPath) }
    }

    deinit {
        if fd >= 0 {
            close(fd)
            unlink(temporaryPath)
        }
    }

    package func write(_ bytes: [UInt8]) throws(FileError) {
        let failed = bytes.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return true
                }
                offset += n
            }
            return false
        }
        if failed { throw FileError.errno(temporaryPath) }
    }

    package func write(_ text: String) throws(FileError) { try write(Array(text.utf8)) }

    /// Closes the file and moves it into place.
    package func commit() throws(FileError) {
        precondition(fd >= 0, "FileWriter committed twice")
        let closed = close(fd)
        fd = -1
        guard closed == 0 else { throw FileError.errno(temporaryPath) }
        guard rename(temporaryPath, path) == 0 else { throw FileError.errno(path) }
    }
}
