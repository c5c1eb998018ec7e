import RedisClient
import TestSupport
import Testing

@Suite("Redis URLs with credentials and a database number (no server)", .offCooperativePool)
struct CredentialURLTests {
    @Test("user, password and database are parsed and percent-decoded")
    func parsed() throws {
        let plain = try RedisURL("redis://:s3cret@cache.local:6380/2")
        #expect(plain == RedisURL(host: "cache.local", port: 6380, user: nil, password: "s3cret", database: 2))
        let acl = try RedisURL("redis://kindred:p%40ss%3Aw%2Frd%25@10.0.0.5/0")
        #expect(acl.user == "kindred" && acl.password == "p@ss:w/rd%" && acl.port == 6379 && acl.database == 0)
        #expect(try RedisURL("redis://a-b:x:y@h:1").password == "x:y", "only the first colon splits user and password")
        #expect(try RedisURL("redis://h:1/15").database == 15)
        #expect(try RedisURL("redis://h:1/").database == 0)
    }

    @Test("printing redacts the password; the stored form round-trips")
    func redacted() throws {
        let url = try RedisURL("redis://kindred:hunter2%40x@10.0.0.5:7000/3")
        #expect(url.description == "redis://kindred:***@10.0.0.5:7000/3")
        #expect(url.server == "redis://kindred@10.0.0.5:7000/3")
        #expect(try RedisURL("redis://:hunter2@h:1").description == "redis://:***@h:1")
        #expect(try RedisURL("redis://h:1/0").description == "redis://h:1", "database 0 is the default and not shown")
        for text in [String(describing: url), String(reflecting: url), dumped(url), "\(url.configuration())",
            String(reflecting: url.configuration()), dumped(url.configuration())]
        {
            #expect(!text.contains("hunter2"), "\(text)")
        }
        #expect(url.urlIncludingPassword == "redis://kindred:hunter2%40x@10.0.0.5:7000/3")
        #expect(try RedisURL(url.urlIncludingPassword) == url)
    }

    @Test("wrong forms are refused naming the problem, never repeating a password", arguments: [
        ("redis://kindred@host:1", "a user needs a password"),
        ("redis://:@host:1", "empty password"),
        ("redis://:pw@host:1/x", "database number"),
        ("redis://:pw@host:1/2147483648", "database number"),
        ("redis://:pw@host:1?db=2", "query options are not accepted"),
        ("redis://:p/w@host:1", "percent-encoded as %2F"),
        ("redis://:p%zzw@host:1", "bad percent-encoding in the password"),
        ("redis://:pw@host:99999", "the port must be 1 to 65535"),
        ("rediss://:pw@host:1", "TLS"),
    ])
    func refused(_ text: String, _ reason: String) {
        let error = #expect(throws: RedisURLError.self) { try RedisURL(text) }
        #expect(error?.description.contains(reason) == true, "\(error?.description ?? "")")
        #expect(error?.description.contains("pw") == false && error?.description.contains("p/w") == false)
    }

    private func dumped(_ value: some Any) -> String {
        var text = ""
        dump(value, to: &text)
        return text
    }
}

@Suite("AUTH and SELECT against real servers", .offCooperativePool)
struct AuthenticationTests {
    static let password = "pa:ss@w/rd%x"

    @Test("the right password connects; a wrong one or none is a clear error that never holds the password")
    func requirepass() throws {
        let server = try RedisServer(options: .init(password: Self.password))
        let good = try RedisConnection(configuration: server.redisURL().configuration())
        #expect(try good.send(["PING"]) == .status("PONG"))

        let wrong = "wrong-secret-123"
        let error = #expect(throws: RedisError.self) {
            try RedisConnection(configuration: server.redisURL(password: wrong).configuration())
        }
        #expect(error?.code == .authenticationFailed)
        #expect(error?.message.hasPrefix("authentication failed for redis://127.0.0.1:\(server.port)") == true, "\(error?.message ?? "")")
        #expect(error.map { "\($0)" }?.contains(wrong) == false)

        // No password: the connection opens but the server refuses commands.
        let anonymous = try RedisConnection(configuration: server.redisURL(password: nil).configurationWithoutPassword())
        let refused = try anonymous.send(["PING"])
        #expect(refused.errorMessage?.hasPrefix("NOAUTH") == true)
    }

    @Test("an ACL user authenticates with AUTH user password; a wrong password names the user, not the password")
    func aclUser() throws {
        let server = try RedisServer(options: .init(password: Self.password))
        let admin = try server.connect()
        _ = try admin.sendChecked(["ACL", "SETUSER", "kindred", "on", ">user-secret", "~*", "+@all"])
        let user = try RedisConnection(configuration: server.redisURL(user: "kindred", password: "user-secret").configuration())
        #expect(try user.sendChecked(["ACL", "WHOAMI"]).string == "kindred")

        let error = #expect(throws: RedisError.self) {
            try RedisConnection(configuration: server.redisURL(user: "kindred", password: "not-it-456").configuration())
        }
        #expect(error?.code == .authenticationFailed)
        #expect(error?.message.hasPrefix("authentication failed for redis://kindred@127.0.0.1:\(server.port)") == true)
        #expect(error.map { "\($0)" }?.contains("not-it-456") == false)
    }

    @Test("keys land in the URL's database, also after a reconnect and from a script")
    func database() throws {
        let server = try RedisServer(options: .init(password: Self.password))
        let url = try RedisURL(server.redisURL(database: 3).urlIncludingPassword)
        #expect(url.database == 3 && url.password == Self.password)
        let connection = try RedisConnection(configuration: url.configuration())
        _ = try connection.sendChecked(["SET", "k", "v"])
        try connection.reconnect()
        _ = try connection.sendChecked(["EVAL", "return redis.call('SET', KEYS[1], 'w')", "1", "from-script"])
        let zero = try server.connect()
        #expect(try zero.sendChecked(["DBSIZE"]).int == 0, "nothing in db 0")
        _ = try zero.sendChecked(["SELECT", "3"])
        #expect(try zero.sendChecked(["GET", "k"]).string == "v")
        #expect(try zero.sendChecked(["GET", "from-script"]).string == "w", "the script ran in db 3 after the reconnect")

        let outOfRange = #expect(throws: RedisError.self) {
            try RedisConnection(configuration: server.redisURL(database: 99).configuration())
        }
        #expect(outOfRange?.code == .connectionFailed)
        #expect(outOfRange?.message.contains("cannot select database 99") == true)
    }
}

extension RedisURL {
    /// The configuration with no `AUTH`.
    fileprivate func configurationWithoutPassword() -> RedisConnection.Configuration {
        RedisURL(host: host, port: port, database: database).configuration()
    }
}
