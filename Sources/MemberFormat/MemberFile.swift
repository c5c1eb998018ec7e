import Scoring

/// A member line that was rejected, with its 1-based line number.
package struct LineRejection: Error, Sendable, Hashable, CustomStringConvertible {
    package let line: Int
    package let error: MemberLineError

    package init(line: Int, error: MemberLineError) {
        self.line = line
        self.error = error
    }

    /// `line 12: age_min: must not be greater than age_max (member 17)`.
    package var description: String { "line \(line): \(error)" }
}

/// Counts from reading a members file.
package struct ReadSummary: Sendable, Hashable {
    package var lines = 0
    package var members = 0
    package var rejected = 0
    package var blank = 0
    package init() {}
}

/// Reads a JSON Lines members file against a survey: each valid member goes
/// to `onMember` in file order (so a later line with the same id replaces an
/// earlier one wherever the caller stores them), each rejected line to
/// `onReject`. Blank lines are skipped. A rejected line never stops the read.
package enum MemberFile {
    package static func read<E: Error>(
        path: String,
        survey: Survey,
        onMember: (Member, Int) throws(E) -> Void,
        onReject: (LineRejection) -> Void
    ) throws(LineReaderError<E>) -> ReadSummary {
        let reader: LineReader
        do { reader = try LineReader(path: path) } catch { throw .file(error) }
        let parser = MemberParser(survey: survey)
        var summary = ReadSummary()
        try reader.forEachLine { (line: UnsafeBufferPointer<UInt8>, number: Int) throws(E) in
            summary.lines = number
            if line.isBlank {
                summary.blank += 1
                return
            }
            switch parser.parse(line) {
            case .success(let member):
                summary.members += 1
                try onMember(member, number)
            case .failure(let error):
                summary.rejected += 1
                onReject(LineRejection(line: number, error: error))
            }
        }
        return summary
    }

    /// Loads a survey and a members file into a new population.
    package static func loadPopulation(
        surveyPath: String, membersPath: String, onReject: (LineRejection) -> Void
    ) throws(ImportError) -> (Population, ReadSummary) {
        let survey = try SurveyFormat.load(path: surveyPath)
        let population = Population(survey: survey)
        do {
            let summary = try read(
                path: membersPath, survey: survey,
                onMember: { (member: Member, _: Int) throws(MemberValidationError) in try population.upsert(member) },
                onReject: onReject)
            return (population, summary)
        } catch {
            switch error {
            case .file(let e): throw .file(e)
            case .body(let e): preconditionFailure("a parsed member failed validation: \(e)")
            }
        }
    }
}
