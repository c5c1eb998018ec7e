import Foundation
import KindredConfig
import Scoring
import Testing

/// The config file's strictness: JSON as RFC 8259 has it, with the line and
/// column of a mistake, and no key Kindred does not know.
@Suite("Config file")
struct ConfigFileTests {
    /// Writes `text` to a fresh `kindred.json` and loads it.
    static func load(_ text: String, environment: [String: String] = [:]) async throws -> KindredConfiguration {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kindred-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("kindred.json").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return try await KindredConfiguration.load(file: path, environment: environment)
    }

    /// The error `text` is refused with, with the temporary path shortened to `kindred.json`.
    static func refusal(_ text: String) async -> String? {
        do {
            _ = try await load(text)
            return nil
        } catch let error as ConfigurationError {
            return error.description.replacing(/\/[^ ]*\/kindred\.json/, with: "kindred.json")
        } catch {
            return "unexpected \(type(of: error))"
        }
    }

    @Test("a valid file is read, and the environment overrides it")
    func valid() async throws {
        let text = """
            {
              "queue": "redis://127.0.0.1:7000",
              "top_n": 300, "workers": 3, "log_format": "json", "log_level": "debug"
            }
            """
        let configuration = try await Self.load(text, environment: ["KINDRED_TOP_N": "200"])
        #expect(configuration.queue == "redis://127.0.0.1:7000")
        #expect(configuration.scoring.topN == 200)
        #expect(try configuration.integer("workers", default: 1) == 3)
        #expect(configuration.logFormat == "json" && configuration.logLevel == "debug")
        #expect(configuration.source(of: "top_n") == "KINDRED_TOP_N")
        #expect(configuration.source(of: "log_level").hasPrefix("\"log_level\" in /"))
    }

    @Test("an unknown key is refused with its position and the nearest known key")
    func unknownKeys() async {
        #expect(await Self.refusal("{\n  \"queu\": \"redis://127.0.0.1:7000\"\n}\n")
            == "unknown key \"queu\" in kindred.json (line 2, column 3); did you mean \"queue\"?")
        #expect(await Self.refusal("{\"topn\": 5}") == "unknown key \"topn\" in kindred.json (line 1, column 2); did you mean \"top_n\"?")
        #expect(await Self.refusal("{\"log-level\": \"info\"}")?.hasSuffix("did you mean \"log_level\"?") == true)
        let far = await Self.refusal("{\"colour\": \"blue\"}")
        #expect(far?.hasPrefix("unknown key \"colour\" in kindred.json (line 1, column 2); the keys are api_token,") == true, "\(far ?? "")")
    }

    @Test("a value of the wrong type is refused, naming the key and both types, never the value")
    func wrongTypes() async {
        #expect(await Self.refusal("{\n  \"listen\": 8419\n}")
            == "\"listen\" in kindred.json (line 2, column 3) must be a string, not an integer")
        #expect(await Self.refusal("{\"top_n\": 50.5}") == "\"top_n\" in kindred.json (line 1, column 2) must be an integer, not a number with a fraction or an exponent")
        #expect(await Self.refusal("{\"top_n\": \"5000\"}") == "\"top_n\" in kindred.json (line 1, column 2) must be an integer, not a string")
        #expect(await Self.refusal("{\"metrics\": false}") == "\"metrics\" in kindred.json (line 1, column 2) must be a string, not true or false")
        #expect(await Self.refusal("{\"workers\": null}") == "\"workers\" in kindred.json (line 1, column 2) must be an integer, not null")
        #expect(await Self.refusal("{\"queue\": [\"redis://a:1\"]}") == "\"queue\" in kindred.json (line 1, column 2) must be a string, not a list")
        let secret = await Self.refusal("{\"api_token\": {\"value\": \"s3cret-s3cret-s3cret\"}}")
        #expect(secret?.contains("s3cret") == false && secret?.contains("must be a string, not an object") == true, "\(secret ?? "")")
    }

    @Test("not strict JSON: refused with line and column, and what is wrong")
    func strictJSON() async {
        #expect(await Self.refusal("{\n  \"queue\": \"redis://x:1\",\n}\n")
            == "kindred.json is not valid JSON: line 3, column 1: expected a key in quotes (a trailing comma)")
        #expect(await Self.refusal("{\n  // the queue\n  \"queue\": \"redis://x:1\"\n}")
            == "kindred.json is not valid JSON: line 2, column 3: expected a key in quotes (comments are not JSON)")
        #expect(await Self.refusal("{\"queue\": \"a\", \"top_n\": 5, \"queue\": \"b\"}")
            == "kindred.json is not valid JSON: line 1, column 28: the key \"queue\" is given twice")
        let truncated = await Self.refusal("{\"queue\": \"redis://127.0.0.1:70")
        #expect(truncated?.hasPrefix("kindred.json is not valid JSON: line 1, column 3") == true, "\(truncated ?? "")")
        #expect(truncated?.hasSuffix("(the file ends too early: truncated?)") == true, "\(truncated ?? "")")
        #expect(await Self.refusal("{\"queue\": \"redis://127.0.0.1:7000\"")?.hasSuffix("truncated?)") == true)
        #expect(await Self.refusal("")?.hasPrefix("kindred.json is not valid JSON: line 1, column 1: expected a JSON object") == true)
        #expect(await Self.refusal("[1]")?.hasPrefix("kindred.json is not valid JSON: line 1, column 1") == true)
        #expect(await Self.refusal("{} {}") == "kindred.json is not valid JSON: line 1, column 4: expected nothing after the object")
        #expect(await Self.refusal("{\"queue\": 'x'}")?.hasSuffix("(JSON strings use double quotes)") == true)
    }

    @Test("a secret in a malformed file is not quoted back")
    func secretsStayOut() async {
        let refusal = await Self.refusal("{\"mysql\": \"mysql://kindred:hunter2@127.0.0.1/kindred\" \"queue\": 1}")
        #expect(refusal?.contains("line 1, column 55") == true, "\(refusal ?? "")")
        #expect(refusal?.contains("hunter2") == false)
    }

    @Test("a missing file names the path and the reason")
    func missingFile() async {
        await #expect {
            _ = try await KindredConfiguration.load(file: "/nonexistent/kindred.json", environment: [:])
        } throws: { error in
            "\(error)" == "cannot read the config file /nonexistent/kindred.json: No such file or directory"
        }
    }

    @Test("every key a program reads from the configuration is a known key")
    func knownKeys() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/kindred")
        var read: Set<String> = []
        for file in try FileManager.default.contentsOfDirectory(atPath: sources.path) where file.hasSuffix(".swift") {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for match in text.matches(of: /configuration\.(?:integer|string)\("([a-z_]+)"/) { read.insert(String(match.1)) }
        }
        #expect(read.contains("workers"), "the scan finds the program keys")
        #expect(read.subtracting(KindredConfiguration.Key.all).isEmpty, "keys read but refused in a file: \(read.subtracting(KindredConfiguration.Key.all))")
        var integers: Set<String> = []
        for file in try FileManager.default.contentsOfDirectory(atPath: sources.path) where file.hasSuffix(".swift") {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for match in text.matches(of: /configuration\.integer\("([a-z_]+)"/) { integers.insert(String(match.1)) }
        }
        #expect(integers.isSubset(of: KindredConfiguration.Key.integers), "integer keys typed as strings in a file: \(integers.subtracting(KindredConfiguration.Key.integers))")
    }

    @Test("the example config file in deploy/ is accepted as it ships, secrets placeholders included")
    func exampleFile() async throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/kindred.example.json").path
        let configuration = try await KindredConfiguration.load(file: path, environment: [:])
        #expect(configuration.mysql?.hasPrefix("mysql://") == true)
        #expect(configuration.queue?.hasPrefix("redis://") == true)
        #expect((configuration.apiToken?.count ?? 0) >= 16, "the token placeholder meets serve's minimum length")
        #expect(configuration.listen == "127.0.0.1:8080")
    }
}
