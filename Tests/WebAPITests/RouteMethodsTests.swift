import Hummingbird
@testable import KindredTestKit
import Testing
import TestSupport

@testable import WebAPI

/// The table behind 405 and OPTIONS, without servers.
@Suite("Route methods", .offCooperativePool)
struct RouteMethodsTests {
    let table = RouteMethods(
        [
            (path: "/v1/members/{id}/matches", method: .get),
            (path: "/v1/members/{id}", method: .put),
            (path: "/v1/members/{id}", method: .delete),
            (path: "/v1/members/{id}/login", method: .post),
            (path: "/healthz", method: .get),
            (path: "/files/:name", method: .get),
        ], head: true)

    @Test("a path matches the route whose literal segments it has, any segment standing for a parameter")
    func matching() {
        #expect(table.route(for: "/v1/members/17/matches")?.template == "/v1/members/{id}/matches")
        #expect(table.route(for: "/v1/members/abc")?.template == "/v1/members/{id}")
        #expect(table.route(for: "/v1/members/17/login")?.template == "/v1/members/{id}/login")
        #expect(table.route(for: "/files/x")?.template == "/files/:name")
        #expect(table.route(for: "/healthz/")?.template == "/healthz")  // empty segments are skipped, as the router does
        #expect(table.route(for: "/v1/members") == nil)
        #expect(table.route(for: "/v1/members/17/matches/more") == nil)
        #expect(table.route(for: "/v1/members/17/Matches") == nil)  // case-sensitive, as the router
        #expect(table.route(for: "/") == nil)
        #expect(table.route(for: "") == nil)
    }

    @Test("Allow lists the route's methods in a fixed order, HEAD with GET, and OPTIONS")
    func allow() throws {
        let member = try #require(table.route(for: "/v1/members/1"))
        #expect(member.methods == [.put, .delete])
        #expect(member.allow(head: true) == "PUT, DELETE, OPTIONS")
        #expect(try #require(table.route(for: "/healthz")).allow(head: true) == "GET, HEAD, OPTIONS")
        #expect(try #require(table.route(for: "/healthz")).allow(head: false) == "GET, OPTIONS")
        let odd = RouteMethods([(path: "/x", method: .init("PROPFIND")!), (path: "/x", method: .post)], head: true)
        #expect(odd.route(for: "/x")?.allow(head: true) == "POST, OPTIONS, PROPFIND")
    }
}
