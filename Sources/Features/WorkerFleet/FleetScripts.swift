import RedisClient

/// The fleet's Lua scripts. Each runs atomically on the endpoint's slot (every key carries the
/// `{endpoint}` hash tag), so a step that touches the stream, a job's record and the counters
/// cannot be seen half done, and each costs one round trip. Times are Redis's own (`TIME`), so
/// the machines' clocks never disagree about a job.
///
/// The fence: a job's `attempt` counts its starts and only ever grows (a `/retry` keeps it, and
/// counts `MAX_ATTEMPTS` from `base`, the attempt it was retried at). Every write a worker makes
/// for a job (a chunk, progress, the final result, a lease renewal) names the attempt it runs, and
/// is refused once the job was started again elsewhere or stopped: a worker presumed dead cannot
/// write a second result, even after the job was retried.
enum FleetScripts {
    /// Shared helpers, prepended to every script.
    static let prelude = """
        if redis.replicate_commands then pcall(redis.replicate_commands) end
        -- Redis's clock, read once per script.
        local clock = nil
        local function now()
          if not clock then
            local t = redis.call('TIME')
            clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
          end
          return clock
        end
        -- A command whose error names the key it failed on (a key of the wrong type, say).
        local function call(...)
          local reply = redis.pcall(...)
          if type(reply) == 'table' and reply.err then
            local args = {...}
            local key = args[2]
            if args[1] == 'XINFO' or args[1] == 'XGROUP' then key = args[3] end
            if args[1] == 'XREADGROUP' then key = args[#args - 1] end
            error({err = reply.err .. ' (on key ' .. tostring(key) .. ')'})
          end
          return reply
        end
        -- A number the fleet wrote; anything else is a damaged record, named.
        local function number(value, key, name)
          if value == false or value == nil then return 0 end
          local n = tonumber(value)
          if not n then
            error({err = 'DAMAGED the fleet record ' .. key .. ' holds ' .. name .. '=' .. string.sub(tostring(value), 1, 40)
              .. ', not a number; delete the field or the key'})
          end
          return n
        end
        local function field(list, name)
          for i = 1, #list, 2 do if list[i] == name then return list[i + 1] end end
          return nil
        end
        local function expire_after(key, ms)
          if tonumber(ms) and tonumber(ms) > 0 then call('PEXPIRE', key, ms) end
        end

        """

    /// KEYS: queue, stats, job, idempotency key (the job's own key when none), dead letters.
    /// ARGV: id, job JSON, input bytes, sync (0/1), max attempts, ttl ms, queue byte limit (0: none),
    /// use idempotency (0/1), idempotency ttl ms, retention ms, execution timeout ms, then for a
    /// gateway with a free slot: group, consumer, events channel, key prefix.
    /// Answers {'ok', entry}, {'known', id} or {'full', queued bytes}; a gateway's answer ends with
    /// the job it started (id, attempt, JSON): the oldest queued, which is usually its own.
    static let submit = LuaScript(prelude + """
        if ARGV[8] == '1' then
          local known = call('GET', KEYS[4])
          if known then return {'known', known} end
        end
        local bytes = tonumber(ARGV[3])
        local limit = tonumber(ARGV[7])
        local queued = math.max(0, number(call('HGET', KEYS[2], 'queued_bytes'), KEYS[2], 'queued_bytes'))
        if limit > 0 and queued > 0 and queued + bytes > limit then return {'full', tostring(queued)} end
        local entry = call('XADD', KEYS[1], '*', 'id', ARGV[1], 'b', ARGV[3])
        call('HSET', KEYS[3], 'request', ARGV[2], 'status', 'IN_QUEUE', 'attempt', '0', 'max', ARGV[5],
          'sync', ARGV[4], 'created', now(), 'entry', entry, 'bytes', ARGV[3], 'retention', ARGV[10],
          'timeout', ARGV[11])
        expire_after(KEYS[3], ARGV[6])
        if ARGV[8] == '1' then call('SET', KEYS[4], ARGV[1], 'PX', ARGV[9]) end
        if #ARGV < 15 then
          call('HINCRBY', KEYS[2], 'queued', 1)
          call('HINCRBY', KEYS[2], 'queued_bytes', bytes)
          return {'ok', entry}
        end
        local q, stats, dead = KEYS[1], KEYS[2], KEYS[5]
        local group, consumer, events, prefix = ARGV[12], ARGV[13], ARGV[14], ARGV[15]
        local worker = consumer
        -- This job is not counted as queued yet: if it starts here, it never is.
        local own = ARGV[1]

        """ + starting + """
        local read = call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', q, '>')
        if read then
          for _, e in ipairs(read[1][2]) do
            if type(e[2]) == 'table' then start(e[1], field(e[2], 'id'), field(e[2], 'b'), true) else drop(e[1]) end
          end
        end
        if not own_counted then
          call('HINCRBY', KEYS[2], 'queued', 1)
          call('HINCRBY', KEYS[2], 'queued_bytes', bytes)
        end
        local answer = {'ok', entry}
        for _, value in ipairs(out) do answer[#answer + 1] = value end
        return answer
        """)

    /// Starting jobs, shared by `take` and `submit` (which may start the job it queued, for a
    /// gateway with a free slot). Expects `q`, `stats`, `dead`, `group`, `consumer`, `worker`,
    /// `prefix`, `events`; collects id, attempt, job JSON per job started in `out`.
    static let starting = """
        local out = {}
        local started = 0
        -- `own` (submit's job, not counted as queued yet) is settled here when it starts.
        local own_counted = false
        local function drop(entry)
          call('XACK', q, group, entry)
          call('XDEL', q, entry)
        end
        local function uncount(bytes, id)
          if id == own then
            own_counted = true
            return
          end
          call('HINCRBY', stats, 'queued', -1)
          call('HINCRBY', stats, 'queued_bytes', -(tonumber(bytes) or 0))
        end
        -- `fresh`: handed out for the first time (never started), so still counted as queued.
        local function start(entry, id, bytes, fresh)
          if not id then drop(entry) return end
          local job = prefix .. 'job:' .. id
          local rec = call('HMGET', job, 'status', 'attempt', 'max', 'request', 'retention', 'entry', 'base')
          local status = rec[1]
          if not status then
            -- Gone while queued (past its TTL): its entry still counted as queued.
            if fresh then uncount(bytes, id) end
            drop(entry)
            return
          end
          -- Final (cancelled while queued: counted out then), or an entry the job no longer runs
          -- under: nothing to run.
          if (status ~= 'IN_QUEUE' and status ~= 'IN_PROGRESS') or rec[6] ~= entry then
            drop(entry)
            return
          end
          if status == 'IN_QUEUE' then uncount(bytes, id) end
          local attempt = number(rec[2], job, 'attempt') + 1
          local max = rec[3] and number(rec[3], job, 'max') or 3
          local base = number(rec[7], job, 'base')
          if attempt - base > max then
            local reason = 'the job was started ' .. (attempt - 1 - base) .. ' time(s) and each time its worker stopped renewing '
              .. 'its lease (the process died, or lost Redis) before it finished; giving up after MAX_ATTEMPTS=' .. max
            call('HSET', job, 'status', 'FAILED', 'result', cjson.encode({error = reason}), 'finished', now())
            call('HDEL', job, 'progress')
            expire_after(job, rec[5])
            expire_after(prefix .. 'chunks:' .. id, rec[5])
            drop(entry)
            call('XADD', dead, 'MAXLEN', '~', '10000', '*', 'id', id, 'attempts', tostring(attempt - 1 - base), 'error', reason,
              'request', rec[4] or '')
            call('HINCRBY', stats, 'failed', 1)
            call('PUBLISH', events, 'd ' .. id)
            return
          end
          call('HSET', job, 'status', 'IN_PROGRESS', 'attempt', tostring(attempt), 'worker', worker, 'started', now())
          out[#out + 1] = id
          out[#out + 1] = tostring(attempt)
          out[#out + 1] = rec[4] or ''
          started = started + 1
        end

        """

    /// KEYS: queue, stats, dead letters.
    /// ARGV: group, consumer, worker id, lease ms, count, key prefix, reclaim (0/1), events channel,
    /// then for entries already read (a blocking XREADGROUP): entry id, job id, bytes, ...
    /// Without entries it reclaims entries idle past the lease (their workers died) when asked,
    /// then reads new ones, without blocking. Answers job id, attempt, job JSON, per job started.
    static let take = LuaScript(prelude + """
        local q, stats, dead = KEYS[1], KEYS[2], KEYS[3]
        local group, consumer, worker, lease, count, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
        local events = ARGV[8]
        local own = nil

        """ + starting + """
        if #ARGV > 8 then
          for i = 9, #ARGV, 3 do start(ARGV[i], ARGV[i + 1], ARGV[i + 2], true) end
          return out
        end
        if ARGV[7] == '1' then
          local cursor = call('HGET', stats, 'claim_cursor') or '0-0'
          -- Only the fleet writes it; anything else starts the scan over rather than stop reclaiming.
          if not string.match(cursor, '^%d+%-%d+$') then cursor = '0-0' end
          local claimed = call('XAUTOCLAIM', q, group, consumer, lease, cursor, 'COUNT', count)
          call('HSET', stats, 'claim_cursor', claimed[1])
          for _, e in ipairs(claimed[2]) do
            if type(e) == 'table' and type(e[2]) == 'table' then start(e[1], field(e[2], 'id'), field(e[2], 'b'), false) end
          end
        end
        if started < count then
          local read = call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - started, 'STREAMS', q, '>')
          if read then
            for _, e in ipairs(read[1][2]) do
              if type(e[2]) == 'table' then start(e[1], field(e[2], 'id'), field(e[2], 'b'), true) else drop(e[1]) end
            end
          end
        end
        return out
        """)

    /// KEYS: queue, workers. ARGV: group, consumer, worker id, beat (running and concurrency), key
    /// prefix, then job id, attempt, ... held. Resets each held entry's idle time (the lease), and
    /// answers the ids this worker no longer holds (cancelled, timed out, or started again elsewhere).
    static let renew = LuaScript(prelude + """
        local lost = {}
        for i = 6, #ARGV, 2 do
          local job = ARGV[5] .. 'job:' .. ARGV[i]
          local rec = call('HMGET', job, 'status', 'attempt', 'entry')
          if rec[1] == 'IN_PROGRESS' and rec[2] == ARGV[i + 1] then
            call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, rec[3], 'JUSTID')
          else
            lost[#lost + 1] = ARGV[i]
          end
        end
        call('HSET', KEYS[2], ARGV[3], now() .. ' ' .. ARGV[4])
        return lost
        """)

    /// KEYS: job, queue, stats, chunks. ARGV: group, attempt, status, result JSON, events channel, id.
    /// Answers {'ok', created, started, finished, worker}, 'gone' or 'stale <status> <attempt>'. A
    /// result of at most 16 kB travels in the
    /// message (`f`: the report's fields), so a waiting gateway answers without reading the record.
    static let finish = LuaScript(prelude + """
        local rec = call('HMGET', KEYS[1], 'status', 'attempt', 'entry', 'retention', 'created', 'started', 'worker', 'updated')
        if not rec[1] then return 'gone' end
        if rec[1] ~= 'IN_PROGRESS' or rec[2] ~= ARGV[2] then
          return 'stale ' .. rec[1] .. ' ' .. tostring(rec[2])
        end
        local finished = now()
        -- The stream first: a damaged entry id fails here, before anything is written.
        if rec[3] then
          call('XACK', KEYS[2], ARGV[1], rec[3])
          call('XDEL', KEYS[2], rec[3])
        end
        call('HSET', KEYS[1], 'status', ARGV[3], 'result', ARGV[4], 'finished', finished)
        -- Progress and chunks only where the run posted some.
        if rec[8] then call('HDEL', KEYS[1], 'progress') end
        expire_after(KEYS[1], rec[4])
        if rec[8] then expire_after(KEYS[4], rec[4]) end
        if ARGV[3] == 'COMPLETED' then call('HINCRBY', KEYS[3], 'completed', 1) else call('HINCRBY', KEYS[3], 'failed', 1) end
        local created, started = rec[5] or '', rec[6] or ''
        if #ARGV[4] <= 16384 then
          call('PUBLISH', ARGV[5], 'f ' .. ARGV[6] .. '\\n' .. ARGV[3] .. '\\n' .. (rec[5] or '') .. '\\n' .. (rec[6] or '') .. '\\n'
            .. finished .. '\\n' .. (rec[7] or '') .. '\\n' .. ARGV[4])
        else
          call('PUBLISH', ARGV[5], 'd ' .. ARGV[6])
        end
        return {'ok', created, started, tostring(finished), rec[7] or ''}
        """)

    /// KEYS: job, chunks. ARGV: attempt, kind ('c' chunk, 'p' progress), JSON, events channel, id.
    static let update = LuaScript(prelude + """
        local rec = call('HMGET', KEYS[1], 'status', 'attempt')
        if rec[1] ~= 'IN_PROGRESS' or rec[2] ~= ARGV[1] then return 0 end
        if ARGV[2] == 'c' then
          call('RPUSH', KEYS[2], ARGV[3])
          local ttl = call('PTTL', KEYS[1])
          if ttl > 0 then call('PEXPIRE', KEYS[2], ttl) end
          call('HSET', KEYS[1], 'updated', '1')
        else
          call('HSET', KEYS[1], 'progress', ARGV[3], 'updated', '1')
        end
        call('PUBLISH', ARGV[4], ARGV[2] .. ' ' .. ARGV[5])
        return 1
        """)

    /// KEYS: job, queue, stats. ARGV: group, status (CANCELLED, TIMED_OUT), result JSON ('' for
    /// none), events channel, cancels channel, id, attempt ('' for any).
    /// Answers the job's status afterwards, or nil for an unknown job.
    static let stop = LuaScript(prelude + """
        local rec = call('HMGET', KEYS[1], 'status', 'entry', 'bytes', 'retention', 'attempt')
        if not rec[1] then return false end
        if ARGV[7] ~= '' and rec[5] ~= ARGV[7] then return rec[1] end
        if rec[1] == 'IN_QUEUE' then
          if rec[2] then call('XDEL', KEYS[2], rec[2]) end
          call('HINCRBY', KEYS[3], 'queued', -1)
          call('HINCRBY', KEYS[3], 'queued_bytes', -(tonumber(rec[3]) or 0))
        elseif rec[1] == 'IN_PROGRESS' then
          if rec[2] then
            call('XACK', KEYS[2], ARGV[1], rec[2])
            call('XDEL', KEYS[2], rec[2])
          end
          call('PUBLISH', ARGV[5], ARGV[6])
        else
          return rec[1]
        end
        call('HSET', KEYS[1], 'status', ARGV[2], 'finished', now())
        call('HDEL', KEYS[1], 'progress')
        if ARGV[3] ~= '' then call('HSET', KEYS[1], 'result', ARGV[3]) end
        if ARGV[2] == 'TIMED_OUT' then call('HINCRBY', KEYS[3], 'failed', 1) end
        expire_after(KEYS[1], rec[4])
        call('PUBLISH', ARGV[4], 'd ' .. ARGV[6])
        return ARGV[2]
        """)

    /// KEYS: job, queue, stats, chunks. ARGV: id, ttl ms. Answers {'ok'}, {'refuse', status} or nil.
    static let retry = LuaScript(prelude + """
        local rec = call('HMGET', KEYS[1], 'status', 'bytes', 'attempt')
        if not rec[1] then return false end
        if rec[1] ~= 'FAILED' and rec[1] ~= 'TIMED_OUT' then return {'refuse', rec[1]} end
        local entry = call('XADD', KEYS[2], '*', 'id', ARGV[1], 'b', rec[2] or '0')
        -- The attempt keeps growing (the fence of the runs before stays closed); the new runs
        -- count from here.
        call('HSET', KEYS[1], 'status', 'IN_QUEUE', 'base', rec[3] or '0', 'entry', entry, 'created', now())
        call('HDEL', KEYS[1], 'result', 'finished', 'started', 'worker', 'progress', 'polled', 'updated')
        call('DEL', KEYS[4])
        expire_after(KEYS[1], ARGV[2])
        call('HINCRBY', KEYS[3], 'queued', 1)
        call('HINCRBY', KEYS[3], 'queued_bytes', tonumber(rec[2]) or 0)
        call('HINCRBY', KEYS[3], 'retried', 1)
        return {'ok'}
        """)

    /// KEYS: queue, stats. ARGV: group, key prefix, events channel, at most this many entries.
    /// Removes jobs not yet handed to a worker; answers how many (0: the queue is empty).
    static let purge = LuaScript(prelude + """
        local last = '0-0'
        local groups = call('XINFO', 'GROUPS', KEYS[1])
        for _, g in ipairs(groups) do
          if field(g, 'name') == ARGV[1] then last = field(g, 'last-delivered-id') end
        end
        local entries = call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', ARGV[4])
        local removed = 0
        for _, e in ipairs(entries) do
          local id = type(e[2]) == 'table' and field(e[2], 'id')
          if id then
            local job = ARGV[2] .. 'job:' .. id
            local rec = call('HMGET', job, 'status', 'bytes')
            if rec[1] == 'IN_QUEUE' then
              call('DEL', job)
              call('HINCRBY', KEYS[2], 'queued', -1)
              call('HINCRBY', KEYS[2], 'queued_bytes', -(tonumber(rec[2]) or 0))
              call('PUBLISH', ARGV[3], 'd ' .. id)
              removed = removed + 1
            end
          end
          call('XDEL', KEYS[1], e[1])
        end
        return {removed, #entries}
        """)

    /// KEYS: job, chunks. Answers status, result ('' for none), then the chunks since the last poll.
    static let poll = LuaScript(prelude + """
        local rec = call('HMGET', KEYS[1], 'status', 'polled', 'result')
        if not rec[1] then return false end
        local from = tonumber(rec[2] or '0')
        local chunks = call('LRANGE', KEYS[2], from, -1)
        if #chunks > 0 then call('HSET', KEYS[1], 'polled', from + #chunks) end
        local out = {rec[1], rec[3] or ''}
        for _, c in ipairs(chunks) do out[#out + 1] = c end
        return out
        """)
}

/// A script's text and its SHA-1 (what `EVALSHA` names it by), computed once.
struct LuaScript: Sendable {
    let text: String
    let sha: String

    init(_ text: String) {
        self.text = text
        self.sha = RedisClient.sha1(text)
    }
}
