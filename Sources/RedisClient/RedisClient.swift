// RedisClient: one connection to a Redis-compatible server over hiredis.
// (Filled in by the storage work.)
import CHiredis
