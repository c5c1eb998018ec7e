import RedisClient

/// The queue's atomic steps, as Lua run inside Redis. Time always comes from
/// the server (`TIME`), so workers on several machines share one clock.
enum QueueScripts {
    /// Shared helper: server time in milliseconds.
    private static let now = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        """

    /// KEYS: waiting, depth, ready0, ready1, ready2, signal.
    /// ARGV: priority, id...
    /// Returns {enqueued, promoted, alreadyWaiting}.
    static let enqueue = RedisScript(now + """

        local prio = tonumber(ARGV[1])
        local added, promoted, waiting = 0, 0, 0
        for i = 2, #ARGV do
          local id = ARGV[i]
          local cur = redis.call('HGET', KEYS[1], id)
          if not cur then
            redis.call('HSET', KEYS[1], id, prio .. ':' .. now)
            redis.call('HINCRBY', KEYS[2], prio, 1)
            redis.call('LPUSH', KEYS[3 + prio], id)
            added = added + 1
          else
            local curPrio = tonumber(string.match(cur, '^(%d+):'))
            if curPrio > prio then
              -- The entry in the lower list becomes stale and is skipped when taken.
              local since = string.match(cur, ':(%d+)$')
              redis.call('HSET', KEYS[1], id, prio .. ':' .. since)
              redis.call('HINCRBY', KEYS[2], curPrio, -1)
              redis.call('HINCRBY', KEYS[2], prio, 1)
              redis.call('LPUSH', KEYS[3 + prio], id)
              promoted = promoted + 1
            else
              waiting = waiting + 1
            end
          end
        end
        local new = added + promoted
        if new > 0 then
          for i = 1, math.min(new, 64) do redis.call('LPUSH', KEYS[6], '1') end
          redis.call('LTRIM', KEYS[6], 0, 255)
        end
        return {added, promoted, waiting}
        """)

    /// Moves due retries back to waiting, then takes the most urgent waiting
    /// member into the worker's processing list, skipping stale list entries.
    /// KEYS: waiting, depth, ready0, ready1, ready2, processing, delayed, attempts, workers.
    /// ARGV: worker.
    /// Returns the processing entry, or false when nothing waits.
    static let fetch = RedisScript(now + """

        redis.call('ZADD', KEYS[9], now, ARGV[1])
        local due = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now, 'LIMIT', 0, 100)
        for _, entry in ipairs(due) do
          redis.call('ZREM', KEYS[7], entry)
          local id, prio, since = string.match(entry, '^(%d+)|(%d+)|(%d+)$')
          if id and redis.call('HEXISTS', KEYS[1], id) == 0 then
            redis.call('HSET', KEYS[1], id, prio .. ':' .. since)
            redis.call('HINCRBY', KEYS[2], prio, 1)
            redis.call('RPUSH', KEYS[3 + tonumber(prio)], id)
          end
        end
        for p = 0, 2 do
          for _ = 1, 10000 do
            local id = redis.call('RPOP', KEYS[3 + p])
            if not id then break end
            local cur = redis.call('HGET', KEYS[1], id)
            if cur and tonumber(string.match(cur, '^(%d+):')) == p then
              redis.call('HDEL', KEYS[1], id)
              redis.call('HINCRBY', KEYS[2], p, -1)
              local attempts = redis.call('HGET', KEYS[8], id) or '0'
              local entry = id .. '|' .. p .. '|' .. string.match(cur, ':(%d+)$') .. '|' .. now .. '|' .. attempts
              redis.call('LPUSH', KEYS[6], entry)
              return entry
            end
          end
        end
        return false
        """)

    /// KEYS: processing, attempts, postponed. ARGV: entry, id.
    /// Returns 1 when the job was held, 0 when it was not (reaped meanwhile).
    static let complete = RedisScript("""
        local removed = redis.call('LREM', KEYS[1], 1, ARGV[1])
        if removed > 0 then redis.call('HDEL', KEYS[2], ARGV[2]); redis.call('HDEL', KEYS[3], ARGV[2]) end
        return removed
        """)

    /// KEYS: processing, attempts, delayed, dead, postponed.
    /// ARGV: entry, id, priority, enqueuedAt, maxAttempts, delayMs (for this attempt), reason.
    /// Returns {'retry', attempt, at} or {'dead', attempts} or {'gone'}.
    static let fail = RedisScript(now + """

        if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return {'gone'} end
        local n = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
        if n >= tonumber(ARGV[5]) then
          redis.call('HDEL', KEYS[2], ARGV[2])
          redis.call('HDEL', KEYS[5], ARGV[2])
          redis.call('HSET', KEYS[4], ARGV[2], ARGV[3] .. '|' .. n .. '|' .. now .. '|' .. ARGV[7])
          return {'dead', n}
        end
        local at = now + tonumber(ARGV[6])
        redis.call('ZADD', KEYS[3], at, ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
        return {'retry', n, at}
        """)

    /// A job that could not run because a dependency it needs is down (its
    /// shard): back to the delayed set without counting an attempt. The
    /// delay doubles with each postponement in a row, from baseMs to maxMs,
    /// times the caller's jitter factor.
    /// KEYS: processing, postponed, delayed.
    /// ARGV: entry, id, priority, enqueuedAt, baseMs, maxMs, jitter.
    /// Returns {'postponed', times, at} or {'gone'}.
    static let postpone = RedisScript(now + """

        if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return {'gone'} end
        local n = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
        local delay = math.min(tonumber(ARGV[5]) * 2 ^ math.min(n - 1, 30), tonumber(ARGV[6]))
        local at = now + math.floor(delay * tonumber(ARGV[7]))
        redis.call('ZADD', KEYS[3], at, ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
        return {'postponed', n, at}
        """)

    /// Puts every job of a worker's processing list back at the front of its
    /// priority (unless the member is waiting already) and forgets the worker.
    /// With ARGV[2] == '1' (the worker died) each job counts a failed attempt
    /// and one that reaches the limit goes to the dead-letter list.
    /// KEYS: processing, waiting, depth, ready0, ready1, ready2, workers, attempts, dead, signal, postponed.
    /// ARGV: worker, countAttempt ('0' or '1'), maxAttempts.
    /// Returns {returned, dead}.
    static let release = RedisScript(now + """

        local returned, dead = 0, 0
        while true do
          -- Newest first: pushed back to the front one by one, the oldest ends up first in line.
          local entry = redis.call('LPOP', KEYS[1])
          if not entry then break end
          local id, prio, since = string.match(entry, '^(%d+)|(%d+)|(%d+)|')
          if id then
            local n = 0
            if ARGV[2] == '1' then n = redis.call('HINCRBY', KEYS[8], id, 1) end
            if ARGV[2] == '1' and n >= tonumber(ARGV[3]) then
              redis.call('HDEL', KEYS[8], id)
              redis.call('HDEL', KEYS[11], id)
              redis.call('HSET', KEYS[9], id, prio .. '|' .. n .. '|' .. now .. '|worker stopped heartbeating while processing it')
              dead = dead + 1
            elseif redis.call('HEXISTS', KEYS[2], id) == 0 then
              redis.call('HSET', KEYS[2], id, prio .. ':' .. since)
              redis.call('HINCRBY', KEYS[3], prio, 1)
              redis.call('RPUSH', KEYS[4 + tonumber(prio)], id)
              redis.call('LPUSH', KEYS[10], '1')
              returned = returned + 1
            end
          end
        end
        redis.call('ZREM', KEYS[7], ARGV[1])
        return {returned, dead}
        """)

    /// KEYS: workers. ARGV: worker. Records a heartbeat at server time.
    static let heartbeat = RedisScript(now + """

        redis.call('ZADD', KEYS[1], now, ARGV[1])
        return now
        """)

    /// KEYS: workers. ARGV: timeoutMs.
    /// Returns the workers whose last heartbeat is older than the timeout.
    static let silentWorkers = RedisScript(now + """

        return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
        """)

    /// KEYS: dead, waiting, depth, ready0, ready1, ready2, signal. ARGV: id...
    /// Moves dead jobs back to waiting at their priority. Returns how many.
    static let redrive = RedisScript(now + """

        local moved = 0
        for i = 1, #ARGV do
          local id = ARGV[i]
          local dead = redis.call('HGET', KEYS[1], id)
          if dead then
            redis.call('HDEL', KEYS[1], id)
            local prio = tonumber(string.match(dead, '^(%d+)|'))
            if redis.call('HEXISTS', KEYS[2], id) == 0 then
              redis.call('HSET', KEYS[2], id, prio .. ':' .. now)
              redis.call('HINCRBY', KEYS[3], prio, 1)
              redis.call('LPUSH', KEYS[4 + prio], id)
              redis.call('LPUSH', KEYS[7], '1')
            end
            moved = moved + 1
          end
        end
        return moved
        """)

    /// KEYS: workers. Returns server time in ms (for ages).
    static let serverTime = RedisScript(now + """

        return now
        """)
}
