import KindredSupport

/// A blocking FIFO of at most `capacity` elements between one producer
/// thread and one consumer thread. Either side may ``close()`` it: the
/// producer when it is done, the consumer when it stops early (then
/// ``send(_:)`` returns false and the producer should stop).
final class BoundedChannel<Element: Sendable>: Sendable {
    private let state = Monitor((buffer: [Element](), closed: false))
    private let capacity: Int

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    /// Waits for room, then appends; false when the channel is closed.
    func send(_ element: Element) -> Bool {
        state.withLock { state, condition in
            while state.buffer.count >= capacity && !state.closed { condition.wait(&state) }
            guard !state.closed else { return false }
            state.buffer.append(element)
            condition.broadcast()
            return true
        }
    }

    /// Waits for an element; `nil` once the channel is closed and drained.
    func receive() -> Element? {
        state.withLock { state, condition in
            while state.buffer.isEmpty && !state.closed { condition.wait(&state) }
            guard !state.buffer.isEmpty else { return nil }
            let element = state.buffer.removeFirst()
            condition.broadcast()
            return element
        }
    }

    /// No more sends; receivers drain what is left.
    func close() {
        state.withLock { state, condition in
            state.closed = true
            condition.broadcast()
        }
    }
}
