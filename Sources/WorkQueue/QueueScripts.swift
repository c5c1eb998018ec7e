import RedisClient

/// The queue's atomic steps, as Lua run inside Redis. Time always comes from
/// the server (`TIME`), so workers on several machines share one clock.
enum QueueScripts {
    /// Shared helper: server time in milliseconds.
    private static let now = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        """

    /// Shared helpers of every script that puts a member in line, so that
    /// each member is pending (waiting or delayed) at most once. They expect
    /// ``now`` before them and the keys ``QueueKeys/placement`` first:
    /// KEYS[1] waiting, [2] depth, [3..5] ready0..2, [6] signal, [7] delayed,
    /// [8] delayed jobs.
    ///
    /// The rule: a run of a member reads MySQL when it starts, so it covers
    /// every request made before that. A request for a member who is pending
    /// already merges into the pending run (the more urgent priority, the
    /// earlier enqueue time) instead of adding one. A delayed run keeps its
    /// time when a request to run now arrives (its delay means something it
    /// needs is failing: a shard outage must not turn every read into a run),
    /// and takes the earlier time when another delayed run merges into it.
    /// A member held in a processing list is not pending: a request then
    /// queues one more run, since the one in flight may have read MySQL
    /// before the change that prompted it.
    private static let placement = """

        local function olderOf(a, b)
          if tonumber(a) <= tonumber(b) then return a end
          return b
        end

        -- Where `id` is pending: 'waiting' or 'delayed' with its priority and
        -- first enqueue time (and, delayed, its due time), or nil. The delayed
        -- sorted set is the truth about what is delayed; the hash holds its details
        -- (repair, since now, should they ever be missing).
        local function pending(id)
          local w = redis.call('HGET', KEYS[1], id)
          if w then
            local p, s = string.match(w, '^(%d+):(%d+)$')
            return 'waiting', tonumber(p), s
          end
          local at = redis.call('ZSCORE', KEYS[7], id)
          if at then
            local p, s = string.match(redis.call('HGET', KEYS[8], id) or '', '^(%d+):(%d+)$')
            return 'delayed', tonumber(p or 1), s or tostring(now), tonumber(at)
          end
          return nil
        end

        -- Puts `id` in the list of `prio`, at the front (a returned job) or the back.
        local function list(id, prio, front)
          redis.call('HINCRBY', KEYS[2], prio, 1)
          if front then redis.call('RPUSH', KEYS[3 + prio], id) else redis.call('LPUSH', KEYS[3 + prio], id) end
        end

        -- One token per newly listed job (at most 64), so idle workers wake at once.
        local function wake(n)
          if n > 0 then
            for _ = 1, math.min(n, 64) do redis.call('LPUSH', KEYS[6], '1') end
            redis.call('LTRIM', KEYS[6], 0, 255)
          end
        end

        -- A run of `id` at `prio` now, first enqueued at `since`. Returns
        -- 'added' (now waiting), 'promoted' (was waiting, listed again more
        -- urgently), 'raised' (delayed, now more urgent), 'waiting' or 'delayed'
        -- (pending already at this priority or a more urgent one).
        local function runNow(id, prio, since, front)
          local where, p, s = pending(id)
          if not where then
            redis.call('HSET', KEYS[1], id, prio .. ':' .. since)
            list(id, prio, front)
            return 'added'
          end
          local merged = math.min(p, prio) .. ':' .. olderOf(s, since)
          if where == 'delayed' then
            redis.call('HSET', KEYS[8], id, merged)
            if prio < p then return 'raised' end
            return 'delayed'
          end
          redis.call('HSET', KEYS[1], id, merged)
          if prio < p then
            -- The entry in the less urgent list becomes stale and is skipped when taken.
            redis.call('HINCRBY', KEYS[2], p, -1)
            list(id, prio, front)
            return 'promoted'
          end
          return 'waiting'
        end

        -- A run of `id` at `prio` at time `at` (a retry, a postponement).
        -- Waiting already, the member runs sooner and that run covers this one;
        -- delayed already, the two become one at the earlier time. Returns when
        -- the member will run.
        local function runAt(id, prio, since, at)
          local where, p, s, due = pending(id)
          if where == 'waiting' then
            if runNow(id, prio, since, false) == 'promoted' then wake(1) end
            return now
          end
          if where == 'delayed' then
            prio = math.min(p, prio)
            since = olderOf(s, since)
            at = math.min(at, due)
          end
          redis.call('HSET', KEYS[8], id, prio .. ':' .. since)
          redis.call('ZADD', KEYS[7], at, id)
          return at
        end
        """

    /// KEYS: placement. ARGV: priority, id...
    /// Returns {enqueued, promoted, alreadyWaiting, alreadyDelayed}.
    static let enqueue = RedisScript(now + placement + """

        local prio = tonumber(ARGV[1])
        local counts = {added = 0, promoted = 0, raised = 0, waiting = 0, delayed = 0}
        for i = 2, #ARGV do
          local outcome = runNow(ARGV[i], prio, now, false)
          counts[outcome] = counts[outcome] + 1
        end
        wake(counts.added + counts.promoted)
        return {counts.added, counts.promoted + counts.raised, counts.waiting, counts.delayed}
        """)

    /// Moves due delayed runs to waiting, then takes the most urgent waiting
    /// member into the worker's processing list, skipping stale list entries.
    /// KEYS: placement, processing, attempts, workers.
    /// ARGV: worker.
    /// Returns the processing entry, or false when nothing waits.
    static let fetch = RedisScript(now + placement + """

        redis.call('ZADD', KEYS[11], now, ARGV[1])
        local due = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now, 'LIMIT', 0, 100)
        for _, entry in ipairs(due) do
          redis.call('ZREM', KEYS[7], entry)
          -- Entries were `id|priority|since` before delayed runs were kept one per member.
          local id, prio, since = string.match(entry, '^(%d+)|(%d+)|(%d+)$')
          if not id and string.match(entry, '^%d+$') then
            id = entry
            prio, since = string.match(redis.call('HGET', KEYS[8], id) or '', '^(%d+):(%d+)$')
            redis.call('HDEL', KEYS[8], id)
          end
          if id then runNow(id, tonumber(prio or 1), since or now, true) end
        end
        for p = 0, 2 do
          for _ = 1, 10000 do
            local id = redis.call('RPOP', KEYS[3 + p])
            if not id then break end
            local cur = redis.call('HGET', KEYS[1], id)
            if cur and tonumber(string.match(cur, '^(%d+):')) == p then
              redis.call('HDEL', KEYS[1], id)
              redis.call('HINCRBY', KEYS[2], p, -1)
              local attempts = redis.call('HGET', KEYS[10], id) or '0'
              local entry = id .. '|' .. p .. '|' .. string.match(cur, ':(%d+)$') .. '|' .. now .. '|' .. attempts
              redis.call('LPUSH', KEYS[9], entry)
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

    /// KEYS: placement, processing, attempts, dead, postponed.
    /// ARGV: entry, id, priority, enqueuedAt, maxAttempts, delayMs (for this attempt), reason.
    /// Returns {'retry', attempt, at} or {'dead', attempts} or {'gone'}.
    static let fail = RedisScript(now + placement + """

        if redis.call('LREM', KEYS[9], 1, ARGV[1]) == 0 then return {'gone'} end
        local n = redis.call('HINCRBY', KEYS[10], ARGV[2], 1)
        if n >= tonumber(ARGV[5]) then
          redis.call('HDEL', KEYS[10], ARGV[2])
          redis.call('HDEL', KEYS[12], ARGV[2])
          redis.call('HSET', KEYS[11], ARGV[2], ARGV[3] .. '|' .. n .. '|' .. now .. '|' .. ARGV[7])
          return {'dead', n}
        end
        local at = runAt(ARGV[2], tonumber(ARGV[3]), ARGV[4], now + tonumber(ARGV[6]))
        return {'retry', n, at}
        """)

    /// A job that could not run because a dependency it needs is down (its
    /// shard): delayed without counting an attempt. The delay doubles with
    /// each postponement in a row, from baseMs to maxMs, times the caller's
    /// jitter factor.
    /// KEYS: placement, processing, postponed.
    /// ARGV: entry, id, priority, enqueuedAt, baseMs, maxMs, jitter.
    /// Returns {'postponed', times, at} or {'gone'}.
    static let postpone = RedisScript(now + placement + """

        if redis.call('LREM', KEYS[9], 1, ARGV[1]) == 0 then return {'gone'} end
        local n = redis.call('HINCRBY', KEYS[10], ARGV[2], 1)
        local delay = math.min(tonumber(ARGV[5]) * 2 ^ math.min(n - 1, 30), tonumber(ARGV[6]))
        local at = runAt(ARGV[2], tonumber(ARGV[3]), ARGV[4], now + math.floor(delay * tonumber(ARGV[7])))
        return {'postponed', n, at}
        """)

    /// Puts every job of a worker's processing list back at the front of its
    /// priority (merged into the member's pending run, if any) and forgets
    /// the worker. With ARGV[2] == '1' (the worker died) each job counts a
    /// failed attempt and one that reaches the limit goes to the dead-letter list.
    /// KEYS: placement, processing, workers, attempts, dead, postponed.
    /// ARGV: worker, countAttempt ('0' or '1'), maxAttempts.
    /// Returns {returned, dead}.
    static let release = RedisScript(now + placement + """

        local returned, dead, listed = 0, 0, 0
        while true do
          -- Newest first: pushed back to the front one by one, the oldest ends up first in line.
          local entry = redis.call('LPOP', KEYS[9])
          if not entry then break end
          local id, prio, since = string.match(entry, '^(%d+)|(%d+)|(%d+)|')
          if id then
            local n = 0
            if ARGV[2] == '1' then n = redis.call('HINCRBY', KEYS[11], id, 1) end
            if ARGV[2] == '1' and n >= tonumber(ARGV[3]) then
              redis.call('HDEL', KEYS[11], id)
              redis.call('HDEL', KEYS[13], id)
              redis.call('HSET', KEYS[12], id, prio .. '|' .. n .. '|' .. now .. '|worker stopped heartbeating while processing it')
              dead = dead + 1
            else
              local outcome = runNow(id, tonumber(prio), since, true)
              if outcome == 'added' or outcome == 'promoted' then listed = listed + 1 end
              returned = returned + 1
            end
          end
        end
        wake(listed)
        redis.call('ZREM', KEYS[10], ARGV[1])
        return {returned, dead}
        """)

    /// KEYS: publishers, publishers seen, then one stats key per minute.
    /// ARGV: publisher, sequence, retention seconds, then per minute: the
    /// number of fields, then field, count pairs.
    /// Adds the batch unless the publisher's batch `sequence` was added
    /// already (then 0), records it, and forgets publishers silent for the
    /// retention. Returns 1 when it added the batch. Checks everything
    /// before its first write (Redis does not undo a script that fails half
    /// way): a key that is not a hash or a count that is not an integer is
    /// an error reply and nothing is written.
    static let addThroughput = RedisScript(now + """

        local function usable(key, wanted)
          local kind = redis.call('TYPE', key)['ok']
          return kind == wanted or kind == 'none'
        end
        if not usable(KEYS[1], 'hash') or not usable(KEYS[2], 'zset') then
          return redis.error_reply('WRONGTYPE throughput publishers')
        end
        local check = 4
        for k = 3, #KEYS do
          if not usable(KEYS[k], 'hash') then return redis.error_reply('WRONGTYPE throughput minute ' .. KEYS[k]) end
          local n = tonumber(ARGV[check])
          if not n then return redis.error_reply('ERR throughput: bad field count') end
          for j = 1, n do
            if not string.match(ARGV[check + 2 * j], '^-?%d+$') then
              return redis.error_reply('ERR throughput: a count is not an integer')
            end
          end
          check = check + 1 + 2 * n
        end

        local retention = tonumber(ARGV[3])
        local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
        local sequence = tonumber(ARGV[2])
        redis.call('ZADD', KEYS[2], now, ARGV[1])
        local forgotten = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - retention * 1000)
        for _, publisher in ipairs(forgotten) do
          redis.call('HDEL', KEYS[1], publisher)
          redis.call('ZREM', KEYS[2], publisher)
        end
        redis.call('EXPIRE', KEYS[2], retention)
        if sequence <= last then
          redis.call('EXPIRE', KEYS[1], retention)
          return 0
        end
        local i = 4
        for k = 3, #KEYS do
          local n = tonumber(ARGV[i])
          i = i + 1
          for _ = 1, n do
            redis.call('HINCRBY', KEYS[k], ARGV[i], ARGV[i + 1])
            i = i + 2
          end
          redis.call('EXPIRE', KEYS[k], retention)
        end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        redis.call('EXPIRE', KEYS[1], retention)
        return 1
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

    /// KEYS: placement, dead. ARGV: id...
    /// Moves dead jobs back to waiting at their priority (merged into the
    /// member's pending run, if any). Returns how many.
    static let redrive = RedisScript(now + placement + """

        local moved, listed = 0, 0
        for i = 1, #ARGV do
          local id = ARGV[i]
          local dead = redis.call('HGET', KEYS[9], id)
          if dead then
            redis.call('HDEL', KEYS[9], id)
            local outcome = runNow(id, tonumber(string.match(dead, '^(%d+)|')), now, false)
            if outcome == 'added' or outcome == 'promoted' then listed = listed + 1 end
            moved = moved + 1
          end
        end
        wake(listed)
        return moved
        """)

    /// KEYS: workers. Returns server time in ms (for ages).
    static let serverTime = RedisScript(now + """

        return now
        """)
}
