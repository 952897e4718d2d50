#!/usr/bin/env bash
# Instructions a request costs the server, GET /ping against POST /runsync and an MCP tools/call of the
# same echo tool (mcp_call.lua), counted by callgrind
# while wrk (-t1 -c16) drives a release `echo --local`. Unlike req/s on a shared host, which moves
# by tens of percent within a minute, the count repeats within about 1 %, so it shows what a change
# to the job path saves. (Valgrind runs the server's threads one at a time, so the count sees less
# batching than a real run; compare counts with counts.) Usage: benchmarks/run.sh instructions [BIN]
set -euo pipefail
bin=${1:-.build-release/release/echo}
seconds=${BENCH_SECONDS:-15}
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
# Valgrind 3.19 cannot read the DWARF 5 the Swift toolchain writes; the symbols are enough.
objcopy --strip-debug "$bin" "$work/echo"
port=$((20000 + RANDOM % 10000))
RUNPOD_LOG_LEVEL=ERROR WORKER_CONCURRENCY=16 valgrind --tool=callgrind --callgrind-out-file="$work/out.%p" \
    --dump-instr=no "$work/echo" --local --port "$port" >/dev/null 2>"$work/valgrind.log" &
server=$!
for _ in $(seq 120); do curl -s -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 1; done
runsync=(-s benchmarks/runsync.lua "http://127.0.0.1:$port/runsync")
mcp=(-s benchmarks/mcp_call.lua "http://127.0.0.1:$port/mcp")
wrk -t1 -c16 -d5s "${runsync[@]}" >/dev/null
wrk -t1 -c16 -d3s "http://127.0.0.1:$port/ping" >/dev/null
wrk -t1 -c16 -d3s "${mcp[@]}" >/dev/null
declare -A cost
for route in ping runsync mcp; do
    case $route in
        ping) args=("http://127.0.0.1:$port/ping") ;;
        runsync) args=("${runsync[@]}") ;;
        mcp) args=("${mcp[@]}") ;;
    esac
    callgrind_control -z "$server" >/dev/null 2>&1
    requests=$(wrk -t1 -c16 -d"${seconds}s" "${args[@]}" | awk '/requests in/ {print $1}')
    callgrind_control -d "$route" "$server" >/dev/null 2>&1
    dump=$(grep -l "^desc: Trigger: dump $route\$" "$work"/out.*)
    instructions=$(awk '/^summary:/ {print $2}' "$dump")
    echo "$route: $requests requests, $((instructions / requests)) instructions a request"
    cost[$route]=$((instructions / requests))
done
echo "/runsync over /ping: +$((cost[runsync] - cost[ping])) instructions a request; ratio of counts $(awk "BEGIN {printf \"%.3f\", ${cost[ping]} / ${cost[runsync]}}")"
echo "MCP tools/call over /runsync: +$((cost[mcp] - cost[runsync])) instructions a request; ratio of counts $(awk "BEGIN {printf \"%.3f\", ${cost[runsync]} / ${cost[mcp]}}")"
if [ -n "${BENCH_KEEP:-}" ]; then cp "$work"/out.* "$BENCH_KEEP"/; echo "callgrind files kept in $BENCH_KEEP"; fi
