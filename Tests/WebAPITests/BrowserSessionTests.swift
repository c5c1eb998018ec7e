@testable import KindredTestKit
import Testing
import TestSupport
import WebAPI

/// Browser sessions for the read pages, without a server: what a valid
/// session is, and that nothing else passes.
@Suite("Browser sessions (no server)", .offCooperativePool)
struct BrowserSessionTests {
    let sessions = BrowserSessions(token: "the API token")
    let now: Int64 = 1_800_000_000

    @Test("a new session is valid until it expires; it never contains the token")
    func lifetime() {
        let value = sessions.issue(now: now)
        #expect(!value.contains("the API token") && !value.contains("the%20API"))
        #expect(value.hasPrefix("v1.\(now + BrowserSessions.lifetime)."))
        #expect(sessions.isValid(value[...], now: now))
        #expect(sessions.isValid(value[...], now: now + BrowserSessions.lifetime - 1))
        #expect(!sessions.isValid(value[...], now: now + BrowserSessions.lifetime))
        #expect(sessions.issue(now: now) != value, "two sessions share a nonce")
    }

    @Test("a changed expiry, nonce or MAC, another token's key, or a malformed value is refused")
    func forgeries() {
        let value = sessions.issue(now: now)
        let parts = value.split(separator: ".").map(String.init)
        let longer = [parts[0], String(now + 10 * BrowserSessions.lifetime), parts[2], parts[3]].joined(separator: ".")
        let otherNonce = [parts[0], parts[1], String(parts[2].reversed()), parts[3]].joined(separator: ".")
        let otherMAC = [parts[0], parts[1], parts[2], String(parts[3].reversed())].joined(separator: ".")
        let rotated = BrowserSessions(token: "a new API token")
        for refused in [
            longer, otherNonce, otherMAC, parts[0...2].joined(separator: "."), value + ".", "v2" + value.dropFirst(2),
            value.uppercased(), "", "....", "v1.9999999999999999999999.00.00", "the API token",
        ] {
            #expect(!sessions.isValid(refused[...], now: now), "\(refused)")
        }
        #expect(!rotated.isValid(value[...], now: now))
    }

    @Test("the cookie is read by name from a Cookie header; the Set-Cookie value is HttpOnly and SameSite=Strict")
    func cookies() {
        #expect(BrowserSessions.cookie("kindred_session", in: "a=1; kindred_session=v1.x; b=2") == "v1.x")
        #expect(BrowserSessions.cookie("kindred_session", in: "xkindred_session=1") == nil)
        #expect(BrowserSessions.cookie("kindred_session", in: "") == nil)
        let header = BrowserSessions.setCookie("v1.x", secure: false)
        #expect(header == "kindred_session=v1.x; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict")
        #expect(BrowserSessions.setCookie("v1.x", secure: true).hasSuffix("; Secure"))
    }
}
