-- wrk: N no-op jobs through the endpoint API, submitted and collected as a client would: POST /run for
-- each, then GET /status-sync/{id} (long poll) for each id answered, again while the job is not final.
-- Usage: wrk -t1 -cC -dD -s fleet_jobs.lua URL -- N
-- Once every job is final it prints "done <completed> <failed> <lost> <refused> <resent>" and stops
-- (bench_fleet.py times the run to that line, then interrupts wrk). A run that never gets there prints the
-- counts from done().
-- Requests and responses are told apart by their bodies (wrk does not say which request a response answers;
-- it has one request in flight per connection): a report with an id is a job, and the job is final or not.
-- Globals, so done() can read them through thread:get.
total, issued, known, final, completed, failed, lost, refused, resent = 0, 0, 0, 0, 0, 0, 0, 0, 0
local pending, head, tail = {}, 1, 0 -- ids to ask about next, oldest first
local outstanding = {}                -- id -> true until its job is final
local seen = {}                       -- id -> true once its job is final
local stalled = nil                   -- os.time() since when every id answered is final yet jobs are missing
local run, ping
local verifying = true
local finals = { COMPLETED = true, FAILED = true, CANCELLED = true, TIMED_OUT = true }
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    total = tonumber(args[1]) or 1000
    run = wrk.format("POST", "/run", { ["Content-Type"] = "application/json" }, '{"input": {"n": 1}}')
    ping = wrk.format("GET", "/ping")
end

function request()
    if verifying then
        -- wrk calls request() once on the first thread's state after init() to check the request parses,
        -- and sends nothing: hand it a request that counts for nothing.
        verifying = false
        return ping
    end
    if issued < total then
        issued = issued + 1
        return run
    end
    local id
    if head <= tail then
        id = pending[head]
        pending[head] = nil
        head = head + 1
    else
        -- Nothing new to ask about: wait on a job another connection waits on too (the near-end case).
        id = next(outstanding)
    end
    if id == nil then
        -- Every job answered so far is final, and /run answers are missing. They come within milliseconds;
        -- one missing for 2 s was lost (wrk drops the request of a connection that failed): submit again.
        if stalled == nil then
            stalled = os.time()
        elseif os.time() - stalled >= 2 and known < total then
            resent = resent + (total - known)
            issued = known
            stalled = nil
        end
        return ping
    end
    stalled = nil
    return wrk.format("GET", "/status-sync/" .. id .. "?wait=5000")
end

local function finish(id, state)
    if seen[id] then return end
    seen[id] = true
    outstanding[id] = nil
    final = final + 1
    if state == "COMPLETED" then completed = completed + 1
    elseif state == "LOST" then lost = lost + 1
    else failed = failed + 1 end
    if final == total then
        io.write(string.format("done %d %d %d %d %d\n", completed, failed, lost, refused, resent))
        io.flush()
        wrk.thread:stop()
    end
end

function response(status, headers, body)
    local id = body:match('"id"%s*:%s*"([^"]+)"')
    local state = body:match('"status"%s*:%s*"([A-Z_]+)"')
    if id ~= nil and state ~= nil then
        if not seen[id] and not outstanding[id] then known = known + 1 end
        if finals[state] then
            finish(id, state)
        elseif not seen[id] then
            outstanding[id] = true
            tail = tail + 1
            pending[tail] = id
        end
    elseif status == 404 then
        -- A job the endpoint no longer knows (expired, or never stored): final, as lost.
        local gone = body:match("job (%S+) not found")
        if gone ~= nil and not seen[gone] then
            if not outstanding[gone] then known = known + 1 end
            finish(gone, "LOST")
        end
    elseif status >= 400 then
        -- A refused /run (429 with Retry-After past QUEUED_INPUT_MB, 503 while Redis is unreachable):
        -- submit it again.
        refused = refused + 1
        issued = issued - 1
    end
    -- 200 without an id: a /ping filler.
end

function done(summary, latency, requests)
    for _, thread in ipairs(threads) do
        local counts = {}
        for _, name in ipairs({ "issued", "known", "final", "completed", "failed", "lost", "refused", "resent" }) do
            table.insert(counts, name .. " " .. tostring(thread:get(name)))
        end
        io.write("counts: " .. table.concat(counts, ", ") .. "\n")
    end
end
