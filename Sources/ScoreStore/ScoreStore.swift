// ScoreStore: score sets on Redis-compatible shards behind a lazy connection manager.
import RedisClient
