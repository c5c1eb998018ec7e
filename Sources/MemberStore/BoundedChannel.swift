import Foundation

/// A blocking FIFO of at most `capacity` elements between one producer
/// thread and one consumer thread. Either side may ``close()`` it: the
/// producer when it is done, the consumer when it stops early (then
/// ``send(_:)`` returns false and the producer should stop).
final class BoundedChannel<Element: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: `buffer` and `closed` are only touched while
    // `condition` is locked.
    private let condition = NSCondition()
    private var buffer: [Element] = []
    private var closed = false
    private let capacity: Int

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    /// Waits for room, then appends; false when the channel is closed.
    func send(_ element: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while buffer.count >= capacity && !closed { condition.wait() }
        guard !closed else { return false }
        buffer.append(element)
        condition.broadcast()
        return true
    }

    /// Waits for an element; `nil` once the channel is closed and drained.
    func receive() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while buffer.isEmpty && !closed { condition.wait() }
        guard !buffer.isEmpty else { return nil }
        let element = buffer.removeFirst()
        condition.broadcast()
        return element
    }

    /// No more sends; receivers drain what is left.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

/// A one-shot signal a thread waits on (a thread "join").
final class Completion: @unchecked Sendable {
    // @unchecked Sendable: `done` is only touched while `condition` is locked.
    private let condition = NSCondition()
    private var done = false

    func signal() {
        condition.lock()
        done = true
        condition.broadcast()
        condition.unlock()
    }

    func wait() {
        condition.lock()
        while !done { condition.wait() }
        condition.unlock()
    }
}
