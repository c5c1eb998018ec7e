/// A failure talking to a Redis-compatible server.
///
/// What callers branch on is ``code``; ``message`` and ``context`` are for
/// logs. The code wraps a private enum, so adding a code later does not break
/// a caller's `switch` (there is none to exhaust: compare with `==`).
///
/// Privacy invariant: no `RedisError` ever contains a command's arguments
/// (member ids, scores, keys). Messages come from hiredis' transport errors or
/// from the server's error reply with the argument echo removed
/// (`ERR unknown command 'X', with args beginning with: ...` keeps only the
/// part before `, with args`). The command *name* (`HSET`) may appear.
package struct RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as a value callers compare against the static members.
    package struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: Sendable, Hashable {
            case connectionFailed
            case connectionBroken
            case timedOut
            case serverError
            case authenticationFailed
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No connection could be established (refused, unreachable, connect
        /// timeout, name resolution, or the socket options could not be set).
        /// Nothing was sent. Try again later.
        package static var connectionFailed: Code { Code(.connectionFailed) }

        /// The connection died: the server closed it (EOF), a read or write
        /// failed (IO, `Broken pipe`, `Connection reset`), or the reply stream
        /// could not be parsed (protocol error). Commands in flight may or may
        /// not have run. The connection must be reconnected before reuse.
        package static var connectionBroken: Code { Code(.connectionBroken) }

        /// A read or write took longer than the connection's read timeout.
        /// hiredis cannot resume a half-read reply, so the connection is broken
        /// as well: the command may or may not have run; reconnect before reuse.
        package static var timedOut: Code { Code(.timedOut) }

        /// The server answered with an error reply (`-ERR`, `-WRONGTYPE`, ...)
        /// and the caller asked for it to be thrown. The connection is fine.
        package static var serverError: Code { Code(.serverError) }

        /// The server refused the URL's credentials on connect (`AUTH`
        /// answered `WRONGPASS` or another error). The message names the
        /// server and the user, never the password. Nothing else was sent.
        package static var authenticationFailed: Code { Code(.authenticationFailed) }

        package var description: String {
            switch base {
            case .connectionFailed: "connectionFailed"
            case .connectionBroken: "connectionBroken"
            case .timedOut: "timedOut"
            case .serverError: "serverError"
            case .authenticationFailed: "authenticationFailed"
            }
        }
    }

    /// What went wrong.
    package let code: Code
    /// A human-readable explanation, free of command arguments.
    package let message: String
    /// Where: the server's `host:port`, or empty when unknown.
    package let context: String
    /// The name of the command that failed (`HSET`), when known.
    package let command: String?

    package init(code: Code, message: String, context: String, command: String? = nil) {
        self.code = code
        self.message = message
        self.context = context
        self.command = command
    }

    /// True when the connection is dead and must be reconnected before it is
    /// used again (``Code/connectionBroken`` and ``Code/timedOut``). A
    /// ``Code/connectionFailed`` error is false here: there was no connection.
    package var isConnectionBroken: Bool {
        code == .connectionBroken || code == .timedOut
    }

    /// For ``Code/serverError``, the first word of the server's message
    /// (`ERR`, `WRONGTYPE`, `BUSY`, `LOADING`, `NOSCRIPT`, ...); otherwise nil.
    package var serverErrorKind: String? {
        code == .serverError ? Self.kind(ofServerMessage: message) : nil
    }

    package var description: String {
        var text = "RedisError.\(code)"
        if let command { text += " (\(command))" }
        if !context.isEmpty { text += " at \(context)" }
        return text + ": " + message
    }
}

extension RedisError {
    /// An error reply turned into a thrown error, with any argument echo removed.
    package static func serverError(_ message: String, context: String, command: String? = nil) -> RedisError {
        RedisError(code: .serverError, message: redactServerMessage(message), context: context, command: command)
    }

    /// The first word of a server error message: `WRONGTYPE` for
    /// `WRONGTYPE Operation against a key holding the wrong kind of value`.
    static func kind(ofServerMessage message: String) -> String {
        String(message.prefix { $0 != " " })
    }

    /// Removes the parts of a server error message that echo a command's
    /// arguments, and bounds its length.
    ///
    /// Redis 6.2+ answers an unknown command with
    /// `ERR unknown command 'X', with args beginning with: 'k' 'v' ` (the
    /// arguments may be member data); the tail from `, with args` is dropped.
    /// Messages longer than 200 characters are cut: no server message needs
    /// more, and a long one is likely to quote its input.
    static func redactServerMessage(_ message: String) -> String {
        var text = Substring(message)
        if let echo = text.firstRange(of: ", with args beginning with:") {
            text = text[..<echo.lowerBound]
        }
        if text.count > 200 {
            return String(text.prefix(200)) + "..."
        }
        return String(text)
    }
}
