import CMariaDB

/// The `MYSQL_BIND` array and value storage for one statement's parameters.
///
/// Invariant: after ``bind(_:)`` every bind points into storage owned here
/// (`scalars` for numbers, `arena` for text and bytes), which stays untouched
/// until the next `bind` call, so it outlives `mysql_stmt_execute`. Storage is
/// reused from one execution to the next; text and bytes are copied once into
/// the arena (a `memcpy`, negligible next to the network round trip).
final class ParameterBindings {
    private(set) var count = 0
    private(set) var binds: UnsafeMutablePointer<MYSQL_BIND>
    private var lengths: UnsafeMutablePointer<UInt>
    private var scalars: UnsafeMutablePointer<UInt64>
    private var arena: UnsafeMutableRawPointer
    private var arenaCapacity: Int

    /// Above this size the arena is given back after each execution, so one
    /// large BLOB does not pin its buffer for the statement's lifetime.
    private static let retainedArenaLimit = 1 << 20

    init(count: Int) {
        self.count = count
        binds = .allocate(capacity: max(count, 1))
        lengths = .allocate(capacity: max(count, 1))
        scalars = .allocate(capacity: max(count, 1))
        arenaCapacity = 256
        arena = .allocate(byteCount: arenaCapacity, alignment: 8)
    }

    deinit {
        binds.deallocate()
        lengths.deallocate()
        scalars.deallocate()
        arena.deallocate()
    }

    /// Makes room for `newCount` parameters (after a re-prepare changed the count).
    func resize(to newCount: Int) {
        guard newCount != count else { return }
        binds.deallocate()
        lengths.deallocate()
        scalars.deallocate()
        binds = .allocate(capacity: max(newCount, 1))
        lengths = .allocate(capacity: max(newCount, 1))
        scalars = .allocate(capacity: max(newCount, 1))
        count = newCount
    }

    /// Fills the bind array from `values` (exactly `count` of them).
    func bind<Values: Collection<SQLValue>>(_ values: Values) {
        var variableBytes = 0
        for value in values {
            switch value {
            case .text(let text): variableBytes += text.utf8.count
            case .bytes(let bytes): variableBytes += bytes.count
            default: break
            }
        }
        reserveArena(variableBytes)

        var offset = 0
        for (index, value) in values.enumerated() {
            var bind = MYSQL_BIND()
            bind.length = lengths + index
            switch value {
            case .null:
                bind.buffer_type = MYSQL_TYPE_NULL
                lengths[index] = 0
            case .int(let number):
                scalars[index] = UInt64(bitPattern: number)
                bind.buffer_type = MYSQL_TYPE_LONGLONG
                bind.buffer = UnsafeMutableRawPointer(scalars + index)
                lengths[index] = 8
            case .uint(let number):
                scalars[index] = number
                bind.buffer_type = MYSQL_TYPE_LONGLONG
                bind.is_unsigned = 1
                bind.buffer = UnsafeMutableRawPointer(scalars + index)
                lengths[index] = 8
            case .double(let number):
                scalars[index] = number.bitPattern
                bind.buffer_type = MYSQL_TYPE_DOUBLE
                bind.buffer = UnsafeMutableRawPointer(scalars + index)
                lengths[index] = 8
            case .text(var text):
                let byteCount = text.withUTF8 { copyIntoArena($0, at: offset) }
                bind.buffer_type = MYSQL_TYPE_STRING
                bind.buffer = arena + offset
                bind.buffer_length = UInt(byteCount)
                lengths[index] = UInt(byteCount)
                offset += byteCount
            case .bytes(let bytes):
                let byteCount = bytes.withUnsafeBytes { copyIntoArena($0, at: offset) }
                bind.buffer_type = MYSQL_TYPE_BLOB
                bind.buffer = arena + offset
                bind.buffer_length = UInt(byteCount)
                lengths[index] = UInt(byteCount)
                offset += byteCount
            }
            (binds + index).initialize(to: bind)
        }
    }

    /// Called once the statement has executed: the server has the values.
    func releaseLargeStorage() {
        guard arenaCapacity > Self.retainedArenaLimit else { return }
        arena.deallocate()
        arenaCapacity = 256
        arena = .allocate(byteCount: arenaCapacity, alignment: 8)
    }

    private func reserveArena(_ byteCount: Int) {
        guard byteCount > arenaCapacity else { return }
        arena.deallocate()
        arenaCapacity = max(byteCount, arenaCapacity * 2)
        arena = .allocate(byteCount: arenaCapacity, alignment: 8)
    }

    private func copyIntoArena(_ source: UnsafeRawBufferPointer, at offset: Int) -> Int {
        if let base = source.baseAddress, source.count > 0 {
            (arena + offset).copyMemory(from: base, byteCount: source.count)
        }
        return source.count
    }

    private func copyIntoArena(_ source: UnsafeBufferPointer<UInt8>, at offset: Int) -> Int {
        copyIntoArena(UnsafeRawBufferPointer(source), at: offset)
    }
}
