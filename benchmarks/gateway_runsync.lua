-- wrk: POST /runsync of a no-op echo job, through the gateway or straight to the echo upstream.
-- BENCH_AUTHORIZATION, when set, is sent as every request's Authorization header.
wrk.method = "POST"
wrk.body = '{"input": {"prompt": "hello", "n": 1}}'
wrk.headers["Content-Type"] = "application/json"
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then
    wrk.headers["Authorization"] = authorization
end

-- Anything but a COMPLETED job whose output is the echoed input counts as a bad answer; the first
-- few are printed (status and body) so a failure can be reported as it was answered.
local bad, shown = 0, 0
response = function(status, headers, body)
    if status ~= 200 or not string.find(body, '"status":"COMPLETED"', 1, true)
        or not string.find(body, '"prompt":"hello"', 1, true) then
        bad = bad + 1
        if shown < 5 then
            shown = shown + 1
            io.write(string.format("bad answer: HTTP %d %s\n", status, string.sub(body or "", 1, 400)))
        end
    end
end

done = function(summary, latency, requests)
    io.write(string.format("bad answers: %d\n", bad))
end
