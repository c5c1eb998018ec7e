import RedisClient

/// A Lua script the store runs with `EVALSHA`, loaded once per connection.
struct LuaScript: Sendable {
    let name: String
    let source: String
}

extension ShardConnection {
    /// The script's SHA1 on `server` (one of this shard's), loading it the
    /// first time, or again with `reload` after a `NOSCRIPT` reply.
    func sha(of script: LuaScript, on server: RedisConnection, reload: Bool = false) throws(RedisError) -> String {
        let key = server.endpoint + " " + script.name
        if !reload, let sha = scriptSHAs[key] { return sha }
        let reply = try server.sendChecked(["SCRIPT", "LOAD", script.source])
        guard let sha = reply.string else {
            throw RedisError(code: .serverError, message: "SCRIPT LOAD answered without a SHA1", context: server.endpoint, command: "SCRIPT")
        }
        scriptSHAs[key] = sha
        return sha
    }
}

/// The store's scripts. Each runs atomically on the shard: no other client's
/// command interleaves with it, which is what keeps a set, its `count` and
/// its `floor` consistent under concurrent placements and writes.
///
/// Meta fields (`scores:{id}:meta`): `stamp`, `generated_at`, `count` (the
/// fields in the buckets), `limit` (the N the set was written for), `floor`
/// (`TENTHS:ID`: the set holds exactly the candidates ranked at or above
/// it; empty when it holds every candidate), `changes` (a counter bumped by
/// every change), `written` (`changes` as the last whole write left it: a
/// whole write's identity, which `generated_at`, in seconds, is not).
///
/// A new set's counter starts at a random value the writer chooses (not at
/// 0), so `written` also tells apart two lifetimes of one member's set (a
/// set removed and written again): a reader's cached copy of the old one
/// never passes for the new one, nor takes the new one's changes.
///
/// The change log (`scores:{id}:log`, ``ScoreStore/SetChange``): every
/// placement that changes a set appends one entry, `CHANGES WRITTEN set ID
/// TENTHS OLD [trim FT:FID]` or `CHANGES WRITTEN del ID OLD` (OLD: the
/// tenths the set held for ID before, -1 when none), so that a reader holding
/// the set as of one `changes` value can bring it to the next without reading
/// it whole. The list keeps at least the last L entries (trimmed back to L
/// once it holds L + L/4, so that one LTRIM serves L/4 placements); a whole
/// write deletes it, as does a removal.
enum Scripts {
    /// Replaces a member's live buckets with the temporary ones of a write.
    ///
    /// KEYS: meta, live bucket 0 ..< B, temporary bucket 0 ..< B, the change
    /// log. ARGV: B, stamp, generated_at, count, limit, floor (`TENTHS:ID`,
    /// or empty when the set holds every candidate), the write's batch size,
    /// then B expected field counts (0: the bucket is empty in the new set),
    /// then the seed of a new set's change counter (1 ..< 2^40, random).
    ///
    /// Checks first that every non-empty temporary bucket exists (a writer
    /// stalled past the TTL finds them expired; one `EXISTS` for all), and
    /// that a bucket written in more than one `HSET` holds all its fields (it
    /// could have expired between two and been recreated by the later one):
    /// if not, changes nothing and answers `-KINDREDTEMP`. Then one `UNLINK`
    /// of every live bucket and the change log (freed off the main thread:
    /// the log describes changes to the old write), and per non-empty
    /// bucket `RENAME` of the temporary one over it and `PERSIST` (RENAME
    /// keeps the TTL). Then the meta, `changes` bumped (from the seed when the
    /// meta holds none: a new set); answers the new `changes`. Keys do not
    /// expire while a script runs, so the check holds
    /// for the whole script.
    ///
    /// MULTI/EXEC cannot do the check: a RENAME of a missing key fails inside
    /// EXEC without undoing the UNLINKs before it, which would publish half a
    /// set. Calls are batched (one EXISTS, one UNLINK) because each
    /// `redis.call` costs ~1-2 us: per-bucket checks made the script cost a
    /// third of the set's HSETs at B = 64.
    static let replace = LuaScript(name: "replace", source: """
        local b = tonumber(ARGV[1])
        local chunk = tonumber(ARGV[7])
        local temps = {}
        for i = 1, b do
          local want = tonumber(ARGV[7 + i])
          if want > 0 then
            temps[#temps + 1] = KEYS[1 + b + i]
            if want > chunk and redis.call('HLEN', KEYS[1 + b + i]) ~= want then
              return redis.error_reply('KINDREDTEMP a temporary bucket expired or is incomplete')
            end
          end
        end
        if #temps > 0 and redis.call('EXISTS', unpack(temps)) ~= #temps then
          return redis.error_reply('KINDREDTEMP a temporary bucket expired')
        end
        local live = {}
        for i = 1, b do live[i] = KEYS[1 + i] end
        live[b + 1] = KEYS[2 + 2 * b]
        redis.call('UNLINK', unpack(live))
        for i = 1, b do
          if tonumber(ARGV[7 + i]) > 0 then
            redis.call('RENAME', KEYS[1 + b + i], KEYS[1 + i])
            redis.call('PERSIST', KEYS[1 + i])
          end
        end
        redis.call('HDEL', KEYS[1], 'low')
        if redis.call('HEXISTS', KEYS[1], 'changes') == 0 then
          redis.call('HSET', KEYS[1], 'changes', ARGV[8 + b])
        end
        redis.call('HSET', KEYS[1], 'stamp', ARGV[2], 'generated_at', ARGV[3], 'count', ARGV[4], 'limit', ARGV[5], 'floor', ARGV[6])
        local changes = redis.call('HINCRBY', KEYS[1], 'changes', 1)
        redis.call('HSET', KEYS[1], 'written', changes)
        return changes
        """)

    /// Places member A into member X's set as the pair stands now: the
    /// one operation that keeps a stored set exact while members change.
    ///
    /// A set is the exact prefix of X's ranking down to its floor
    /// (SCORING.md order: score descending, id ascending): it holds a
    /// candidate iff the candidate ranks at or above the floor. The meta's
    /// `floor` is `TENTHS:ID`, or empty when the set holds every candidate
    /// X has (then anyone who becomes a candidate belongs in it).
    ///
    /// KEYS: X's meta, X's bucket of A, X's change log. ARGV: A's id, the
    /// score (`7.3`, or empty when A is not X's candidate), its tenths (-1
    /// when not a candidate), the stamp (X's answers version the caller
    /// computed the pair with), N, slack S, B, X's key prefix (`scores:{X}`,
    /// to reach the other buckets when trimming: they share the hash tag,
    /// hence the slot), L (the change log's length), now (the caller's Unix
    /// seconds: the change is logged only while the meta's `watched` is at
    /// least this, ``ScoreStore/Configuration/watchSeconds``), the trim
    /// window W (``ScoreStore/Configuration/trimWindow(forLimit:)``).
    ///
    /// Every change (entered, updated, removed; a trim rides on the entry
    /// that caused it) bumps `changes` once and, while a reader watches the
    /// set, appends one log entry carrying the new value, when the set has a
    /// `written` identity (a set written before it had none: readers read
    /// those whole).
    ///
    /// Answers `{code, count, floorTenths, floorId, trimmed, generatedAt}`;
    /// floorTenths is -1 when the set holds every candidate. Codes:
    /// 0 X has no set; 1 entered; 2 updated (on a set no reader watches,
    /// also A rewritten with the score it had: telling the two apart would
    /// cost an HGET per placement); 3 nothing to do (A is not there and does
    /// not belong there); 4 removed (A was there and no longer belongs);
    /// 5 unchanged (a watched set); 6 stale (X's set was computed for
    /// another stamp: it will be rebuilt, and its rebuild ranks A as A is
    /// then); 7 legacy (a set written before floors were kept: rebuild it).
    ///
    /// A set that grows past N + S + W entries is trimmed back to N + S (a
    /// histogram of tenths finds the cut; ties at the cut lose their largest
    /// ids first, as SCORING.md ranks them), and its floor becomes the
    /// lowest entry kept. Unparsable values rank lowest and go first.
    static let place = LuaScript(name: "place", source: placeFunctions + """
        return placeOne(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4],
          tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]))
        """)

    /// Many placements in one call: ``place``'s work for each, in order, on
    /// one server (a standalone shard: the targets' keys lie in many slots,
    /// which a cluster refuses in one script).
    ///
    /// A `redis.call` from Lua costs ~1 us and a script call's own framing
    /// (the command's arguments, the Lua tables of KEYS and ARGV, the reply)
    /// several: carrying a batch of placements per call pays the framing once.
    ///
    /// KEYS: per placement, its meta, bucket and change log (``place``'s
    /// three). ARGV: N, slack S, B, L, now, W, then per placement its id,
    /// score, tenths, stamp and the target's key prefix. Answers the placements'
    /// six-integer answers, one after another (6 x count integers).
    static let placeMany = LuaScript(name: "placeMany", source: placeFunctions + """
        local n, slack, b, keep, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
        local window = tonumber(ARGV[6])
        local out = {}
        local count = (#ARGV - 6) / 5
        for i = 0, count - 1 do
          local a, k = 7 + 5 * i, 3 * i
          local r = placeOne(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3],
            n, slack, b, ARGV[a + 4], keep, now, window)
          local o = 6 * i
          out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5], out[o + 6] = r[1], r[2], r[3], r[4], r[5], r[6]
        end
        return out
        """)

    /// ``place`` and ``placeMany``'s shared Lua: `placeOne` places one
    /// member into one set and answers the six integers.
    ///
    /// The meta is read with one `HMGET` and written with one `HSET` (count,
    /// `changes` bumped, and the floor after a trim); the helpers are
    /// top-level functions, not closures made per call.
    static let placeFunctions = """
        -- Locals, not globals: each use of a global (math.floor is two table
        -- lookups) costs in the trim's per-entry loop.
        local tonumber, floor = tonumber, math.floor
        -- pcall: a log key of another type must not fail the placement (the
        -- set has changed by then); readers then find no entry and read whole.
        -- Trimmed back to L once it holds L + L/4: one LTRIM per L/4 entries.
        local function logged(logKey, keep, entry)
          local length = redis.pcall('RPUSH', logKey, entry)
          if type(length) == 'number' and length > keep + floor(keep / 4) then
            redis.pcall('LTRIM', logKey, -keep, -1)
          end
        end
        local function tenthsOf(value)
          local v = tonumber(value)
          local et = v and floor(v * 10 + 0.5) or -1
          -- Written so that NaN (tonumber('nan')) is unparsable too.
          if not (et >= 0 and et <= 100) then return -1 end
          return et
        end
        -- A field's member id; an unparsable field (NaN included, which would
        -- break the sort of the ties) ranks last, as the largest id.
        local function idOf(field)
          local id = tonumber(field)
          if id and id >= 0 and id < 1e12 then return id end
          return 1e12
        end
        -- A set past N + S + W cut back to N + S: answers the entries removed and
        -- the new count, floor tenths and floor id.
        local function trimSet(n, slack, b, prefix, fT, fId)
          -- Pass 1: a histogram of tenths over every bucket. Each bucket's
          -- HGETALL answer is kept whole for pass 2, and a value's tenths
          -- are computed once per distinct value (a set holds at most 101
          -- valid ones: a lookup by the interned string instead of a parse
          -- per entry).
          local keys, alls, hist, memo = {}, {}, {}, {}
          for v = 0, 100 do hist[v] = 0 end
          local total, corrupt = 0, 0
          for bucket = 1, b do
            local key = prefix
            if b > 1 then key = prefix .. ':' .. (bucket - 1) end
            local all = redis.call('HGETALL', key)
            for j = 2, #all, 2 do
              local value = all[j]
              local et = memo[value]
              if not et then
                et = tenthsOf(value)
                memo[value] = et
              end
              if et >= 0 then hist[et] = hist[et] + 1 else corrupt = corrupt + 1 end
            end
            keys[bucket], alls[bucket] = key, all
            total = total + #all / 2
          end
          -- The cut: drop every corrupt entry, everything below tenths `cut`,
          -- and the `k - under` largest ids at `cut` (they rank last).
          local k = total - (n + slack) - corrupt
          local cut, under = -1, 0
          if k > 0 then
            for v = 0, 100 do
              if under + hist[v] >= k then cut = v break end
              under = under + hist[v]
            end
          end
          -- Pass 2: the fields to delete per bucket, the ties at the cut, and
          -- the lowest kept entry above the cut.
          local drops = {}
          local atCutIds, atCutBuckets, atCutFields = {}, {}, {}
          local minT, minId = 101, 0
          for bucket = 1, b do
            local all, d = alls[bucket], {}
            for j = 2, #all, 2 do
              local et = memo[all[j]]
              if et < 0 or et < cut then
                d[#d + 1] = all[j - 1]
              elseif et == cut then
                local y = #atCutIds + 1
                atCutIds[y], atCutBuckets[y], atCutFields[y] = idOf(all[j - 1]), bucket, all[j - 1]
              elseif et <= minT then
                -- Only an entry at or below the lowest kept tenths so far
                -- needs its id parsed.
                local eid = idOf(all[j - 1])
                if et < minT or eid > minId then minT, minId = et, eid end
              end
            end
            drops[bucket] = d
          end
          local order = {}
          for x = 1, #atCutIds do order[x] = x end
          table.sort(order, function(p, q) return atCutIds[p] > atCutIds[q] end)
          local drop = 0
          if cut >= 0 then drop = k - under end
          for i = 1, drop do
            local x = order[i]
            local d = drops[atCutBuckets[x]]
            d[#d + 1] = atCutFields[x]
          end
          -- One HDEL per bucket (in chunks: unpack's arguments live on the C stack).
          local trimmed = 0
          for bucket = 1, b do
            local d = drops[bucket]
            for s = 1, #d, 1000 do
              redis.call('HDEL', keys[bucket], unpack(d, s, math.min(s + 999, #d)))
            end
            trimmed = trimmed + #d
          end
          if drop < #order then
            fT, fId = cut, atCutIds[order[drop + 1]]
          elseif minT <= 100 then
            fT, fId = minT, minId
          end
          return trimmed, total - trimmed, fT, fId
        end
        local function placeOne(meta, bucketKey, logKey, aid, score, t, stamp, n, slack, b, prefix, keep, now, window)
          local m = redis.call('HMGET', meta, 'stamp', 'count', 'floor', 'generated_at', 'written', 'changes', 'watched')
          if not m[2] then return {0, 0, -1, 0, 0, 0} end
          local count = tonumber(m[2]) or 0
          local generated = tonumber(m[4]) or 0
          if not m[3] then return {7, count, -1, 0, 0, generated} end
          local fT, fId = -1, 0
          if m[3] ~= '' then
            local sep = string.find(m[3], ':', 1, true)
            if sep then
              fT = tonumber(string.sub(m[3], 1, sep - 1)) or -1
              fId = tonumber(string.sub(m[3], sep + 1)) or 0
            end
          end
          if m[1] ~= stamp then return {6, count, fT, fId, 0, generated} end
          local id = tonumber(aid)
          local inside = t >= 0 and (fT < 0 or t > fT or (t == fT and id <= fId))
          local changes = (tonumber(m[6]) or 0) + 1
          -- Logged while a reader watches the set (and the set has a write
          -- identity). Only a logged change needs the value it replaces
          -- (and only then is an unchanged pair told from an update): an
          -- unwatched set saves the HGET, HDEL and HSET say whether the
          -- field was there.
          local logging = m[5] and (tonumber(m[7]) or 0) >= now
          local old = false
          if logging then old = redis.call('HGET', bucketKey, aid) end
          if not inside then
            if logging then
              if not old then return {3, count, fT, fId, 0, generated} end
              redis.call('HDEL', bucketKey, aid)
            elseif redis.call('HDEL', bucketKey, aid) == 0 then
              return {3, count, fT, fId, 0, generated}
            end
            count = count - 1
            redis.call('HSET', meta, 'count', count, 'changes', changes)
            if logging then logged(logKey, keep, string.format('%d %s del %s %d', changes, m[5], aid, tenthsOf(old))) end
            return {4, count, fT, fId, 0, generated}
          end
          local added
          if logging then
            if old == score then return {5, count, fT, fId, 0, generated} end
            redis.call('HSET', bucketKey, aid, score)
            added = not old
          else
            added = redis.call('HSET', bucketKey, aid, score) == 1
          end
          local code = 2
          if added then
            code = 1
            count = count + 1
          end
          local trimmed = 0
          local trim = count > n + slack + window
          if trim then
            trimmed, count, fT, fId = trimSet(n, slack, b, prefix, fT, fId)
            redis.call('HSET', meta, 'count', count, 'floor', string.format('%d:%d', fT, fId), 'changes', changes)
          else
            redis.call('HSET', meta, 'count', count, 'changes', changes)
          end
          if logging then
            local entry = string.format('%d %s set %s %d %d', changes, m[5], aid, t, old and tenthsOf(old) or -1)
            if trim then entry = entry .. string.format(' trim %d:%d', fT, fId) end
            logged(logKey, keep, entry)
          end
          return {code, count, fT, fId, trimmed, generated}
        end

        """

    /// A set's meta and the change log's entries after a reader's copy, in
    /// one atomic step (``ScoreStore/readMeta(_:shard:since:)``).
    ///
    /// KEYS: the meta, the change log. ARGV: the `changes` value of the
    /// reader's copy (-1: no copy, the meta alone), its `written`, L, the
    /// watch mark (Unix seconds until which placements log the set's
    /// changes; 0: none) and the time below which an existing mark is
    /// renewed (renewing every read would make every read a write).
    ///
    /// Answers `{meta's HGETALL, entries}`: the last `changes - C` entries of
    /// the log when the meta's `written` is the copy's and that is at most L,
    /// else none (the reader reads the set whole; so also when the log key is
    /// not a list). The reader checks that the
    /// entries are exactly C + 1 ... `changes` of that write: a log trimmed
    /// past C, or missing entries, shows there.
    static let changesSince = LuaScript(name: "changesSince", source: """
        local m = redis.call('HGETALL', KEYS[1])
        local c = tonumber(ARGV[1])
        local mark = tonumber(ARGV[4]) or 0
        if #m > 0 and mark > 0 then
          local watched = 0
          for i = 1, #m, 2 do
            if m[i] == 'watched' then watched = tonumber(m[i + 1]) or 0 end
          end
          if watched < tonumber(ARGV[5]) then redis.call('HSET', KEYS[1], 'watched', ARGV[4]) end
        end
        if #m == 0 or c < 0 then return {m, {}} end
        local changes, written
        for i = 1, #m, 2 do
          if m[i] == 'changes' then changes = tonumber(m[i + 1]) elseif m[i] == 'written' then written = m[i + 1] end
        end
        if not changes or written ~= ARGV[2] or changes <= c or changes - c > tonumber(ARGV[3]) then return {m, {}} end
        local entries = redis.pcall('LRANGE', KEYS[2], c - changes, -1)
        if entries.err then return {m, {}} end
        return {m, entries}
        """)
}
