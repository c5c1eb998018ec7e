import CoreMetrics
import Foundation
import KindredCore
import KindredSupport
import Logging
import MemberFormat
import MemberStore
import RedisClient
import ScoreStore
import Scoring
import Synchronization
import WorkQueue

/// Members' sets' answers versions computed from the snapshot, valid while the snapshot
/// has not been written since (its write count is the key's version).
final class AnswersVersionCache: Sendable {
    /// The snapshot version the answers versions were computed under.
    private let state = Mutex((version: -1, answersVersions: [MemberID: String]()))

    func answersVersion(of member: MemberID, version: Int) -> String? {
        state.withLock { state in state.version == version ? state.answersVersions[member] : nil }
    }

    /// `member`'s answers version from the snapshot; nil when the snapshot does not hold them.
    func snapshotAnswersVersion(of member: MemberID, _ core: GenerationCore) -> String? {
        let survey = core.survey
        return core.population.read(withVersion: { population, version -> String? in
            if let answersVersion = self.answersVersion(of: member, version: version) { return answersVersion }
            guard let record = population.member(member) else { return nil }
            let answersVersion = String(AnswersVersion.of(record, survey: survey))
            self.remember(member, answersVersion: answersVersion, version: version)
            return answersVersion
        })
    }

    func remember(_ member: MemberID, answersVersion: String, version: Int) {
        state.withLock { state in
            if state.version != version {
                state.answersVersions.removeAll(keepingCapacity: true)
                state.version = version
            }
            if state.answersVersions.count < 200_000 { state.answersVersions[member] = answersVersion }
        }
    }
}
