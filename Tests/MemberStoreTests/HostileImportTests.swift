import Foundation
import MariaDBClient
import MemberFormat
@_spi(Testing) import MemberStore
import Scoring
import Testing
import TestSupport

@Suite("Import of hostile lines", .offCooperativePool)
struct HostileImportTests {
    @Test("a line nested 70,000 levels deep and lines with invalid UTF-8 are rejected with their line numbers; the lines around them are stored")
    func deepAndInvalidLines() throws {
        try withStore { connection, _, _ in
            try withTemporaryDirectory { directory in
                var lines: [[UInt8]] = []
                var expectedRejections: [(line: Int, reason: String)] = []
                func bad(_ line: [UInt8], _ reason: String) {
                    lines.append(line)
                    expectedRejections.append((lines.count, reason))
                }
                for id in MemberID(1)...30 {
                    lines.append(Array(MemberWriter.line(sampleMember(id)).utf8.dropLast()))
                    switch id {
                    case 10:
                        // 70,000 levels in an unknown field of an otherwise valid line.
                        var deep = Array(MemberWriter.line(sampleMember(100)).utf8.dropLast(2))
                        deep += Array(#", "x": "#.utf8)
                        let column = deep.count + 64
                        deep += Array(repeating: UInt8(ascii: "["), count: 70_000) + Array(repeating: UInt8(ascii: "]"), count: 70_000)
                        deep.append(UInt8(ascii: "}"))
                        bad(deep, "nested deeper than 64 levels at column \(column) (member 100)")
                    case 15:
                        // 70,000 levels in a known field, never closed.
                        bad(Array(#"{"answers": "#.utf8) + Array(repeating: UInt8(ascii: "["), count: 70_000), "nested deeper than 64 levels at column 76")
                    case 20:
                        // Invalid UTF-8 (a surrogate) in an unknown field's string.
                        var line = Array(MemberWriter.line(sampleMember(101)).utf8.dropLast(2))
                        line += Array(#", "nickname": "A"#.utf8)
                        let column = line.count + 1
                        line += [0xED, 0xA0, 0x80] + Array(#""}"#.utf8)
                        bad(line, "invalid UTF-8 at column \(column) (member 101)")
                    case 25:
                        // An overlong encoding in a key.
                        var line = Array(#"{"id": 102, ""#.utf8)
                        let column = line.count + 1
                        line += [0xC0, 0xAF] + Array(#"": 1}"#.utf8)
                        bad(line, "invalid UTF-8 at column \(column) (member 102)")
                    default:
                        break
                    }
                }
                let files = try writeFiles(directory, survey: smallSurvey, lines: [])
                var contents: [UInt8] = []
                for line in lines { contents += line + [UInt8(ascii: "\n")] }
                try Data(contents).write(to: URL(fileURLWithPath: files.members))

                var rejections: [LineRejection] = []
                let importer = Importer(connection: connection, options: .init(batchSize: 7, parserThreads: 2))
                let summary = try importer.run(
                    surveyPath: files.survey, membersPath: files.members, onReject: { rejections.append($0) })

                #expect(rejections.map(\.line) == expectedRejections.map(\.line))
                for (rejection, expected) in zip(rejections, expectedRejections) {
                    #expect(rejection.description == "line \(expected.line): \(expected.reason)")
                }
                #expect(summary.progress.members == 30 && summary.progress.rejected == 4)
                let repository = try MemberRepository.open(connection)
                #expect(try repository.memberIDs(.all) == Array(MemberID(1)...30))
                for id in MemberID(1)...30 {
                    #expect(try repository.member(id) == normalized(sampleMember(id)))
                }
                try expectWholeMembers(connection, survey: smallSurvey)
            }
        }
    }
}
