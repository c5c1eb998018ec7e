import MariaDBClient
import Scoring

/// The survey in `survey_questions`: one row per question with its option
/// count. Every stored member's packed answers are laid out for it, so it
/// is written once, by the first import, and every later import must bring
/// the same survey.
package enum SurveyStore {
    /// The stored survey, or `nil` before the first import.
    @_spi(Testing) public static func stored(_ connection: MariaDBConnection) throws -> Survey? {
        let rows = try connection.query("SELECT question, options FROM survey_questions ORDER BY question")
        guard !rows.isEmpty else { return nil }
        var counts: [Int] = []
        for (index, row) in rows.enumerated() {
            guard let question = row.int(0), question == Int64(index), let options = row.int(1) else {
                throw MemberStoreError(.corruptRow, "survey_questions: question numbers are not 0 ..< \(rows.count)")
            }
            counts.append(Int(options))
        }
        do {
            return try Survey(optionCounts: counts)
        } catch {
            throw MemberStoreError(.corruptRow, "survey_questions: \(error)")
        }
    }

    /// Stores `survey` when none is stored; otherwise checks that it equals
    /// the stored one. Returns true when it stored it.
    ///
    /// Two first imports racing: both insert with `INSERT IGNORE` in a
    /// transaction, and each then compares what is stored with its own
    /// survey, so the loser of a race with a different survey fails (and
    /// rolls back) like any later import.
    ///
    /// - Throws: ``MemberStoreError/Code/surveyMismatch`` naming the first
    ///   question that differs.
    @discardableResult
    @_spi(Testing) public static func store(_ survey: Survey, _ connection: MariaDBConnection) throws -> Bool {
        try connection.transaction { connection in
            let existing = try stored(connection)
            if let existing {
                try check(survey, against: existing)
                return false
            }
            var values: [SQLValue] = []
            for (question, options) in survey.optionCounts.enumerated() {
                values.append(SQLValue(question))
                values.append(SQLValue(options))
            }
            try connection.insert(
                BatchInsert("INSERT IGNORE INTO survey_questions (question, options) VALUES", columnsPerRow: 2),
                values: values)
            guard let now = try stored(connection) else {
                throw MemberStoreError(.corruptRow, "survey_questions: empty right after storing the survey")
            }
            try check(survey, against: now)
            return true
        }
    }

    /// Throws ``MemberStoreError/Code/surveyMismatch`` naming the first
    /// question where `survey` and `stored` differ.
    package static func check(_ survey: Survey, against stored: Survey) throws {
        let given = survey.optionCounts
        let have = stored.optionCounts
        for question in 0..<max(given.count, have.count) {
            let message: String
            if question >= have.count {
                message = "question \(question) is not in the stored survey, which has \(have.count) questions"
            } else if question >= given.count {
                message = "question \(question) is in the stored survey but not in this one, which has \(given.count) questions"
            } else if given[question] != have[question] {
                message = "question \(question) has \(given[question]) options here but \(have[question]) in the stored survey"
            } else {
                continue
            }
            throw MemberStoreError(
                .surveyMismatch,
                "the survey differs from the one already stored: \(message); members are stored against one survey")
        }
    }
}
