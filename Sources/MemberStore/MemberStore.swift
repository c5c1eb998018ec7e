// MemberStore: members, answers, blocks, shards, the member-to-shard directory and generation bookkeeping in MySQL/MariaDB.
import MariaDBClient
