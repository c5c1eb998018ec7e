import Foundation
import FuzzTargets
import Testing
import TestSupport

/// Replays every saved fuzz input (`Tests/FuzzCorpus/<target>/`: seeds, the
/// minimized corpus, and under `crashes/` every input that once crashed or
/// broke a property) through the same entry points `kindred-fuzz` runs. A
/// crash fails the whole test run, as it should; a target's properties
/// (round trips, errors that name columns and never repeat the input) trap
/// the same way.
@Suite("Fuzz corpus replay", .offCooperativePool)
struct CorpusReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("FuzzCorpus")

    /// Every regular file under `directory`, recursively, sorted.
    static func inputs(_ directory: URL) -> [URL] {
        guard let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey]) else {
            return []
        }
        return walker.compactMap { $0 as? URL }
            .filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
            .filter { $0.lastPathComponent != "README.md" }
            .sorted { $0.path < $1.path }
    }

    @Test("every target has a corpus, and every input runs without a crash", arguments: FuzzTarget.allCases)
    func replay(_ target: FuzzTarget) throws {
        let directory = Self.corpus.appendingPathComponent(target.rawValue)
        let files = Self.inputs(directory)
        // An empty or missing corpus is a failure, not a silent pass.
        #expect(files.count >= 3, "\(directory.path) holds \(files.count) inputs; scripts/fuzz seeds it")
        var outcomes: [FuzzTarget.Outcome] = []
        for file in files {
            let bytes = try [UInt8](Data(contentsOf: file))
            outcomes.append(target.run(bytes))
        }
        // A corpus that only exercises the error path is no corpus.
        #expect(outcomes.contains(.accepted) || target == .respReply, "\(target.rawValue): no input is accepted")
    }

    @Test("inputs that once crashed a parser are now refused with a message naming the problem")
    func crashes() throws {
        for target in [FuzzTarget.jsonReader, .memberLine, .survey] {
            let files = Self.inputs(Self.corpus.appendingPathComponent(target.rawValue).appendingPathComponent("crashes"))
            #expect(!files.isEmpty, "\(target.rawValue)/crashes holds the deep-nesting regressions")
            for file in files {
                let outcome = target.run(try [UInt8](Data(contentsOf: file)))
                guard case .rejected(let message) = outcome else {
                    Issue.record("\(file.lastPathComponent): accepted")
                    continue
                }
                #expect(message.contains("at column") || message.contains(":"), "\(file.lastPathComponent): \(message)")
            }
        }
    }

    @Test("MySQL URLs that once printed part of their password are refused without it")
    func mysqlURLCrashes() throws {
        let directory = Self.corpus.appendingPathComponent(FuzzTarget.mysqlURL.rawValue).appendingPathComponent("crashes")
        let file = directory.appendingPathComponent("password-tail-after-question-mark")
        let bytes = try [UInt8](Data(contentsOf: file))
        #expect(String(decoding: bytes, as: UTF8.self) == "mysql://u:p@ss?word@127.0.0.1/k")
        guard case .rejected(let message) = FuzzTarget.mysqlURL.run(bytes) else {
            Issue.record("accepted")
            return
        }
        #expect(message.contains("the password must be percent-encoded"), "\(message)")
        for piece in ["word@", "'word", "ss?w", "p@ss", "127.0.0.1"] { #expect(!message.contains(piece), "\(message)") }
    }

    @Test("a document nested 150,000 levels deep is refused by every JSON target, naming the column")
    func deepNesting() {
        let deep = [UInt8](repeating: UInt8(ascii: "["), count: 150_000)
        #expect(FuzzTarget.jsonReader.run(deep) == .rejected("nested deeper than 64 levels at column 65"))
        // Inside an object (level 1), the 64th '[' opens level 65: column 5 + 64.
        let inField = Array(#"{"x":"#.utf8) + deep
        for target in [FuzzTarget.jsonReader, .memberLine, .survey] {
            #expect(target.run(inField) == .rejected("nested deeper than 64 levels at column 69"), "\(target.rawValue)")
        }
    }
}
