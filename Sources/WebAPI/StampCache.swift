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

/// Members' set stamps computed from the snapshot, valid while the snapshot
/// has not been written since (its write count is the key's version).
final class StampCache: Sendable {
    /// The snapshot version the stamps were computed under.
    private let state = Mutex((version: -1, stamps: [MemberID: String]()))

    func stamp(of member: MemberID, version: Int) -> String? {
        state.withLock { state in state.version == version ? state.stamps[member] : nil }
    }

    /// `member`'s stamp from the snapshot; nil when the snapshot does not hold them.
    func snapshotStamp(of member: MemberID, _ core: GenerationCore) -> String? {
        let survey = core.survey
        return core.population.read(withVersion: { population, version -> String? in
            if let stamp = self.stamp(of: member, version: version) { return stamp }
            guard let record = population.member(member) else { return nil }
            let stamp = String(AnswersVersion.of(record, survey: survey))
            self.remember(member, stamp: stamp, version: version)
            return stamp
        })
    }

    func remember(_ member: MemberID, stamp: String, version: Int) {
        state.withLock { state in
            if state.version != version {
                state.stamps.removeAll(keepingCapacity: true)
                state.version = version
            }
            if state.stamps.count < 200_000 { state.stamps[member] = stamp }
        }
    }
}
