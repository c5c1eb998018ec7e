import Scoring

/// The survey file of the import format (SCORING.md):
/// `{"questions": [{"id": 0, "options": 4}, {"id": 1, "options": 2}]}`.
/// Question ids must be exactly `0 ..< Q`, in any order, each once.
package enum SurveyFormat {
    package static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(SurveyError) -> Survey {
        var reader = JSONReader(bytes)
        var key: [UInt8] = []
        var scratch: [UInt8] = []
        var options: [Int: Int] = [:]
        var sawQuestions = false
        var problem: String?
        do throws(JSONReader.SyntaxError) {
            guard reader.peek() == .object else { throw reader.error("a JSON object") }
            try reader.readObject(key: &key) { (r: inout JSONReader, name: UnsafeBufferPointer<UInt8>) throws(JSONReader.SyntaxError) in
                guard name.elementsEqual("questions".utf8) else {
                    try r.skipValue(scratch: &scratch)
                    return
                }
                sawQuestions = true
                guard r.peek() == .array else {
                    try r.skipValue(scratch: &scratch)
                    problem = problem ?? "questions: must be a list"
                    return
                }
                try r.readArray { (r: inout JSONReader, index: Int) throws(JSONReader.SyntaxError) in
                    var id: Int64?
                    var count: Int64?
                    var innerKey: [UInt8] = []
                    guard r.peek() == .object else {
                        try r.skipValue(scratch: &scratch)
                        problem = problem ?? "questions[\(index)]: must be an object with id and options"
                        return
                    }
                    try r.readObject(key: &innerKey) { (r: inout JSONReader, name: UnsafeBufferPointer<UInt8>) throws(JSONReader.SyntaxError) in
                        if name.elementsEqual("id".utf8), r.peek() == .number {
                            id = try r.readNumber().integer
                        } else if name.elementsEqual("options".utf8), r.peek() == .number {
                            count = try r.readNumber().integer
                        } else {
                            try r.skipValue(scratch: &scratch)
                        }
                    }
                    guard let id, id >= 0, id < Int64(Survey.questionLimit.upperBound) else {
                        problem = problem ?? "questions[\(index)].id: must be an integer from 0 to 511"
                        return
                    }
                    guard let count, Survey.optionLimit.contains(Int(clamping: count)) else {
                        problem = problem ?? "questions[\(index)].options: must be an integer from 2 to 8"
                        return
                    }
                    if options.updateValue(Int(count), forKey: Int(id)) != nil {
                        problem = problem ?? "questions[\(index)].id: question \(id) given twice"
                    }
                }
            }
            try reader.expectEnd()
        } catch {
            throw SurveyError(error.description)
        }
        if let problem { throw SurveyError(problem) }
        guard sawQuestions else { throw SurveyError("questions: is required") }
        let counts = (0..<options.count).map { options[$0] }
        guard counts.allSatisfy({ $0 != nil }) else {
            throw SurveyError("questions: ids must be 0 ..< \(options.count) with none missing")
        }
        return try Survey(optionCounts: counts.map { $0! })
    }

    package static func parse(_ text: String) throws(SurveyError) -> Survey {
        try Array(text.utf8).withUnsafeBufferPointer { (bytes) throws(SurveyError) in try parse(bytes) }
    }

    /// Reads and parses a survey file; errors name the file.
    package static func load(path: String) throws(ImportError) -> Survey {
        let bytes: [UInt8]
        do { bytes = try LineReader.contents(of: path) } catch { throw .file(error) }
        do {
            return try bytes.withUnsafeBufferPointer { (b) throws(SurveyError) in try parse(b) }
        } catch {
            throw .survey(path: path, error)
        }
    }

    /// The survey as the import format writes it, one question per line.
    package static func encode(_ survey: Survey) -> String {
        let questions = survey.optionCounts.enumerated().map { "  {\"id\": \($0.offset), \"options\": \($0.element)}" }
        return "{\"questions\": [\n" + questions.joined(separator: ",\n") + "\n]}\n"
    }
}

/// A failure to import files at all (as opposed to a rejected member line).
package enum ImportError: Error, Sendable, CustomStringConvertible {
    case file(FileError)
    case survey(path: String, SurveyError)

    package var description: String {
        switch self {
        case .file(let error): "\(error)"
        case .survey(let path, let error): "\(path): \(error)"
        }
    }
}
