import ScoreStore

extension ScoreStore {
    /// Whether `shard` answers a read now (its marker, present or not): one
    /// round trip, or none while its breaker is open. Blocking.
    package func answers(shard: ShardID) -> Bool {
        do {
            _ = try checkMarker(shard: shard)
            return true
        } catch {
            return false
        }
    }
}
