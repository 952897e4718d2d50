-- wrk: a non-streamed chat completion (POST to the URL given to wrk: our gateway's
-- /openai/v1/chat/completions or LiteLLM's /v1/chat/completions), model BENCH_MODEL.
-- BENCH_AUTHORIZATION, when set, is sent as every request's Authorization header.
local model = os.getenv("BENCH_MODEL") or "bench-model"
wrk.method = "POST"
wrk.body = '{"model": "' .. model .. '", "messages": [{"role": "user", "content": "hello"}]}'
wrk.headers["Content-Type"] = "application/json"
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then
    wrk.headers["Authorization"] = authorization
end

-- Anything but a completion (HTTP 200, object chat.completion, an assistant message) counts as a bad
-- answer; the first few are printed (status and body) so a failure can be reported as it was answered.
-- `bad` is a global of each thread's Lua state (wrk runs `response` there and `done` in its main
-- state, where a local of the script would still read 0): `done` adds up every thread's.
bad = 0
local shown = 0
response = function(status, headers, body)
    if status ~= 200 or not string.find(body, '"object":"chat.completion"', 1, true)
        or not string.find(body, '"role":"assistant"', 1, true) then
        bad = bad + 1
        if shown < 5 then
            shown = shown + 1
            io.write(string.format("bad answer: HTTP %d %s\n", status, string.sub(body or "", 1, 400)))
        end
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
