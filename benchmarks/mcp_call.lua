-- wrk: an MCP tools/call of the echo tool, stateless (no initialize: any replica may answer).
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"prompt":"hello","n":1}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
-- MCP_AUTHORIZATION, when set, is sent as every request's Authorization header (the same token or
-- key each time, as a client reuses its token).
local authorization = os.getenv("MCP_AUTHORIZATION")
if authorization and authorization ~= "" then
    wrk.headers["Authorization"] = authorization
end

-- Anything but a result with the echoed arguments counts as an error.
-- `bad` is a global of each thread's Lua state (wrk runs `response` there and `done` in its main
-- state, where a local of the script would still read 0): `done` adds up every thread's.
bad = 0
response = function(status, headers, body)
    if status ~= 200 or not string.find(body, '"prompt":"hello"', 1, true) or string.find(body, '"isError":true', 1, true) then
        bad = bad + 1
    end
end

local threads = {}
setup = function(thread)
    table.insert(threads, thread)
end

done = function(summary, latency, requests)
    local total = 0
    for _, thread in ipairs(threads) do total = total + (thread:get("bad") or 0) end
    io.write(string.format("bad answers: %d\n", total))
end
