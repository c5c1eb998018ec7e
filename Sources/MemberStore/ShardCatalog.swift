import MariaDBClient

/// A shard's lifecycle state.
package enum ShardState: String, Sendable, Hashable, CaseIterable {
    /// Serves its members and receives new ones.
    case active
    /// Serves its members, receives no new ones (being emptied).
    case draining
    /// Unreachable or retired: receives no new members.
    case down
}

/// One row of the shard list.
package struct ShardInfo: Sendable, Hashable {
    package let id: UInt32
    package let address: ShardAddress
    /// Share of new members relative to the other active shards.
    package let weight: Int
    package let state: ShardState
    /// Bytes the shard may use for score sets, when set.
    package let memoryBudget: UInt64?
    /// `YYYY-MM-DD HH:MM:SS.ffffff` UTC.
    package let createdAt: String
    /// Members assigned to it in the directory.
    package let assignedMembers: Int
}

/// The shard list in MySQL (`shards`): every program reads the same list,
/// and adding a shard is adding a row (`kindred shards add`).
package struct ShardCatalog {
    @_spi(Testing) public let connection: MariaDBConnection

    /// Weights are 1 to this; to stop new members reaching a shard, drain it.
    package static let weightRange = 1...1_000_000

    @_spi(Testing) public init(connection: MariaDBConnection) {
        self.connection = connection
    }

    /// Every shard, by id, with the number of members assigned to each.
    package func list() throws -> [ShardInfo] {
        try shards(where: "")
    }

    /// The shard with this id, or `nil`.
    package func shard(_ id: UInt32) throws -> ShardInfo? {
        try shards(where: "WHERE s.id = ?", [.uint(UInt64(id))]).first
    }

    /// Adds a shard (state active) and returns it. The row holds the
    /// address with its password (``ShardAddress/stored``).
    /// - Throws: ``MemberStoreError`` `invalidShardAddress`,
    ///   `invalidShardWeight`, `duplicateShard` (the same host, port and
    ///   database listed already, whatever the credentials; the error names
    ///   the shard).
    @discardableResult
    package func add(address text: String, weight: Int = 1, memoryBudget: UInt64? = nil) throws -> ShardInfo {
        try add(address: try ShardAddress(text), weight: weight, memoryBudget: memoryBudget)
    }

    /// ``add(address:weight:memoryBudget:)`` for a parsed address, in
    /// `state` (`down` for a shard added while it cannot be reached).
    @discardableResult
    package func add(address: ShardAddress, weight: Int = 1, memoryBudget: UInt64? = nil, state: ShardState = .active) throws -> ShardInfo {
        if let existing = try list().first(where: { $0.address.identity == address.identity }) {
            throw MemberStoreError(.duplicateShard, "shard \(existing.id) (\(existing.address)) is that server and database already")
        }
        guard Self.weightRange.contains(weight) else {
            throw MemberStoreError(
                .invalidShardWeight,
                "shard weight must be \(Self.weightRange.lowerBound) to \(Self.weightRange.upperBound); drain a shard to stop new members")
        }
        let result: ExecutionResult
        do {
            result = try connection.execute(
                "INSERT INTO shards (address, weight, state, memory_budget, created_at) VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6))",
                [.text(address.stored), SQLValue(weight), .text(state.rawValue), memoryBudget.map { SQLValue.uint($0) } ?? .null])
        } catch let error as MariaDBError where error.isDuplicateKey {
            throw MemberStoreError(.duplicateShard, "a shard with address \(address) exists already")
        }
        guard let shard = try shard(UInt32(truncatingIfNeeded: result.lastInsertID)) else {
            throw MemberStoreError(.unknownShard, "the new shard \(result.lastInsertID) vanished")
        }
        return shard
    }

    /// Deletes a shard's row, only while no member is assigned to it: the
    /// check and the delete are one statement, so a member assigned
    /// meanwhile keeps the shard. The caller checks that the shard holds no
    /// sets any more (the score store's business).
    /// - Throws: ``MemberStoreError/Code/unknownShard``;
    ///   ``MemberStoreError/Code/shardNotEmpty`` naming how many members it has.
    package func remove(_ id: UInt32) throws {
        let result = try connection.execute(
            "DELETE FROM shards WHERE id = ? AND NOT EXISTS (SELECT 1 FROM member_shards ms WHERE ms.shard_id = ?)",
            [.uint(UInt64(id)), .uint(UInt64(id))])
        guard result.affectedRows == 0 else { return }
        guard let shard = try shard(id) else { throw MemberStoreError(.unknownShard, "no shard has id \(id)") }
        throw MemberStoreError(
            .shardNotEmpty,
            "shard \(id) still has \(shard.assignedMembers) member(s) assigned: drain it (kindred shards drain \(id)) and move them first (docs/managed-servers.md)")
    }

    /// The highest write sequence recorded for the shard (0: none yet).
    package func sequence(of id: UInt32) throws -> Int64 {
        try connection.query("SELECT sequence FROM shards WHERE id = ?", [.uint(UInt64(id))]).first?.int(0) ?? 0
    }

    /// Records a write sequence the shard answered, keeping the highest.
    package func recordSequence(_ id: UInt32, _ sequence: Int64) throws {
        try connection.execute(
            "UPDATE shards SET sequence = GREATEST(sequence, ?) WHERE id = ?", [.int(sequence), .uint(UInt64(id))])
    }

    /// Sets the recorded sequence to `sequence` (after a shard's data was
    /// found restored from an older copy and its sets queued for repair).
    package func resetSequence(_ id: UInt32, to sequence: Int64) throws {
        try connection.execute("UPDATE shards SET sequence = ? WHERE id = ?", [.int(sequence), .uint(UInt64(id))])
    }

    /// Sets a shard's state. Draining and down shards get no new members;
    /// members already on them stay until released.
    /// - Throws: ``MemberStoreError/Code/unknownShard``.
    package func setState(_ id: UInt32, _ state: ShardState) throws {
        try connection.execute("UPDATE shards SET state = ? WHERE id = ?", [.text(state.rawValue), .uint(UInt64(id))])
        guard try shard(id) != nil else { throw MemberStoreError(.unknownShard, "no shard has id \(id)") }
    }

    /// Sets (or, with nil, clears) the bytes of score sets a shard may hold.
    package func setMemoryBudget(_ id: UInt32, _ budget: UInt64?) throws {
        try connection.execute(
            "UPDATE shards SET memory_budget = ? WHERE id = ?", [budget.map { SQLValue.uint($0) } ?? .null, .uint(UInt64(id))])
        guard try shard(id) != nil else { throw MemberStoreError(.unknownShard, "no shard has id \(id)") }
    }

    /// Sets a shard's weight.
    package func setWeight(_ id: UInt32, _ weight: Int) throws {
        guard Self.weightRange.contains(weight) else {
            throw MemberStoreError(
                .invalidShardWeight, "shard weight must be \(Self.weightRange.lowerBound) to \(Self.weightRange.upperBound)")
        }
        try connection.execute("UPDATE shards SET weight = ? WHERE id = ?", [SQLValue(weight), .uint(UInt64(id))])
        guard try shard(id) != nil else { throw MemberStoreError(.unknownShard, "no shard has id \(id)") }
    }

    private func shards(where condition: String, _ parameters: [SQLValue] = []) throws -> [ShardInfo] {
        let rows = try connection.query(
            """
            SELECT s.id, s.address, s.weight, s.state, s.memory_budget, CAST(s.created_at AS CHAR),
              (SELECT COUNT(*) FROM member_shards ms WHERE ms.shard_id = s.id)
            FROM shards s \(condition) ORDER BY s.id
            """, parameters)
        return try rows.map { row in
            guard let address = try? ShardAddress(row.string(1) ?? ""), let state = ShardState(rawValue: row.string(3) ?? "")
            else {
                throw MemberStoreError(.corruptRow, "shards: row \(row.uint(0) ?? 0) has an invalid address or state")
            }
            return ShardInfo(
                id: UInt32(truncatingIfNeeded: row.uint(0) ?? 0), address: address, weight: Int(row.int(2) ?? 0),
                state: state, memoryBudget: row.uint(4), createdAt: row.string(5) ?? "",
                assignedMembers: Int(row.int(6) ?? 0))
        }
    }
}
