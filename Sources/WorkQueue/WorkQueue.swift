// WorkQueue: the durable, prioritised work queue of member ids on Redis.
import RedisClient
