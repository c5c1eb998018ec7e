import Crypto
import Foundation

/// Sessions for the pages a browser opens (`/browse`, the `/admin`
/// dashboard): a signed, expiring cookie that is never the API token.
///
/// `?token=` (checked against the API token) starts one: the page answers
/// `303` with `kindred_session=v1.EXPIRES.NONCE.MAC` (HttpOnly,
/// SameSite=Strict, `Secure` behind an HTTPS proxy), where MAC is
/// HMAC-SHA256 of `v1.EXPIRES.NONCE` under a key derived from the API
/// token. So a stolen cookie reads pages (and, with the page's CSRF token,
/// takes the dashboard's actions) until it expires (12 hours) but cannot
/// call the API (which takes only the bearer header), every web
/// process accepts every other's sessions (they share the token), and a new
/// API token ends every session.
package struct BrowserSessions: Sendable {
    package static let cookieName = "kindred_session"
    /// How long a session lasts, in seconds.
    package static let lifetime: Int64 = 12 * 3600

    private let key: SymmetricKey

    package init(token: String) {
        let derived = HMAC<SHA256>.authenticationCode(
            for: Data("kindred browser session v1".utf8), using: SymmetricKey(data: Data(token.utf8)))
        key = SymmetricKey(data: Data(derived))
    }

    /// A new session's cookie value, valid until `now` + ``lifetime``.
    package func issue(now: Int64) -> String {
        var random = SystemRandomNumberGenerator()  // getrandom(2): a CSPRNG
        let nonce = (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) }
        let body = "v1.\(now + Self.lifetime).\(Self.hex(nonce))"
        return body + "." + Self.hex(Array(HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: key)))
    }

    /// Whether `value` is a session this key signed that has not expired.
    package func isValid(_ value: Substring, now: Int64) -> Bool {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "v1", parts[1].count <= 19, let expires = Int64(parts[1]), expires > now,
            parts[2].count == 32, Self.bytes(hex: parts[2]) != nil, let mac = Self.bytes(hex: parts[3]), mac.count == 32
        else { return false }
        let body = value[..<parts[3].startIndex].dropLast()  // "v1.EXPIRES.NONCE"
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(body.utf8), using: key)
    }

    /// The CSRF token of a session: the dashboard's forms carry it, and an
    /// action is taken only when the form's token is the session's (a
    /// page of another site can make the browser send the cookie, never
    /// read the token). HMAC of the session under the same key.
    package func csrfToken(for session: Substring) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(("csrf:" + session).utf8), using: key)
        return Self.hex(Array(mac))
    }

    /// Whether `given` is the CSRF token of `session` (compared in constant time).
    package func isValidCSRF(_ given: Substring, session: Substring) -> Bool {
        let expected = Array(csrfToken(for: session).utf8)
        let bytes = Array(given.utf8)
        var difference = UInt8(bytes.count == expected.count ? 0 : 1)
        for index in 0..<min(bytes.count, expected.count) { difference |= bytes[index] ^ expected[index] }
        return difference == 0
    }

    /// The `Set-Cookie` value that hands a session to the browser.
    package static func setCookie(_ value: String, secure: Bool) -> String {
        "\(cookieName)=\(value); Path=/; Max-Age=\(lifetime); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    /// The value of cookie `name` in a `Cookie` header, if present.
    package static func cookie(_ name: String, in header: String) -> Substring? {
        for part in header.split(separator: ";") {
            let pair = part.drop { $0 == " " }
            if pair.hasPrefix(name + "=") { return pair.dropFirst(name.count + 1) }
        }
        return nil
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    static func bytes(hex: Substring) -> [UInt8]? {
        let utf8 = Array(hex.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }
}
