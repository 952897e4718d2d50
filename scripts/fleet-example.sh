#!/usr/bin/env bash
# A fleet on one machine (docs/fleet.md): a redis-server with AOF on, two gateways and three
# workers of the echo handler, all serving endpoint `echo-fleet`. Runs one /runsync through each
# gateway, prints how to call them, then runs until Ctrl-C. On exit (Ctrl-C, SIGTERM, a failed
# step) it stops every process it started, by PID: workers and gateways first, Redis last.
# Each process logs to its own file in a temporary directory, which is kept and named at the end.
#
#   scripts/fleet-example.sh
#   REDIS_PORT=6390 REDIS_APPENDFSYNC=everysec ECHO_BIN=.build/release/echo scripts/fleet-example.sh
#
# REDIS_PORT: Redis's port (default: the first free one from 6390). REDIS_APPENDFSYNC: `always`
# (default; no acknowledged write lost if Redis is killed) or `everysec`. ECHO_BIN: the echo binary
# (default: the debug build's, `swift build --show-bin-path`/echo). Needs redis-server 6.2 or later
# and curl; the gateways take ports 8101 and 8102.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

endpoint=echo-fleet
gateway_ports=(8101 8102)
workers=3

die() {
    echo "fleet-example: $*" >&2
    exit 1
}

# Whether something accepts connections on 127.0.0.1:PORT.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

command -v redis-server > /dev/null || die "redis-server is not installed (apt-get install redis-server; scripts/install-deps.sh --test installs it)"
command -v curl > /dev/null || die "curl is not installed"
command -v setsid > /dev/null || die "setsid (util-linux) is not installed"

# The fleet takes dead workers' jobs with XAUTOCLAIM: Redis 6.2 or later.
redis_version=$(redis-server --version | sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p')
[[ $redis_version =~ ^([0-9]+)\.([0-9]+) ]] || die "cannot read redis-server's version from: $(redis-server --version)"
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
((major > 6 || (major == 6 && minor >= 2))) || die "redis-server is $redis_version; the fleet needs 6.2 or later (XAUTOCLAIM)"

fsync=${REDIS_APPENDFSYNC:-always}
case $fsync in
    always | everysec) ;;
    *) die "REDIS_APPENDFSYNC must be always or everysec, got '$fsync'" ;;
esac

if [ -n "${REDIS_PORT:-}" ]; then
    [[ $REDIS_PORT =~ ^[0-9]+$ ]] || die "REDIS_PORT must be a port number, got '$REDIS_PORT'"
    ! port_in_use "$REDIS_PORT" || die "REDIS_PORT=$REDIS_PORT: something already listens there"
    redis_port=$REDIS_PORT
else
    redis_port=6390
    while port_in_use "$redis_port"; do
        redis_port=$((redis_port + 1))
        ((redis_port < 6490)) || die "no free port from 6390 to 6489 for Redis; set REDIS_PORT"
    done
fi
for port in "${gateway_ports[@]}"; do
    ! port_in_use "$port" || die "port $port is taken; the gateways need ${gateway_ports[*]}"
done

# The echo binary. The script builds only when ECHO_BIN is unset and the debug build's binary is
# missing (`swift build --product echo`); an ECHO_BIN that is not an executable is an error.
if [ -z "${ECHO_BIN:-}" ]; then
    command -v swift > /dev/null || die "swift is not on PATH; set ECHO_BIN to the echo binary"
fi
echo_bin=${ECHO_BIN:-$(swift build --package-path "$root" --show-bin-path)/echo}
if [ ! -x "$echo_bin" ]; then
    [ -z "${ECHO_BIN:-}" ] || die "ECHO_BIN=$ECHO_BIN is not an executable file"
    echo "fleet-example: $echo_bin is missing; building it" >&2
    swift build --package-path "$root" --product echo
fi
[[ $echo_bin == /* ]] || echo_bin="$PWD/$echo_bin"

# What the caller's shell may have set would change what the processes are (PORT or RunPod's
# queue variables: another mode; an API key: every curl below refused; WORKER_CONCURRENCY=0:
# no worker takes jobs). This example sets everything itself.
unset PORT PORT_HEALTH RUNPOD_WEBHOOK_GET_JOB RUNPOD_API_KEY API_KEY WORKER_CONCURRENCY
export QUEUE_URL="redis://127.0.0.1:$redis_port" ENDPOINT_ID=$endpoint

work=$(mktemp -d "${TMPDIR:-/tmp}/fleet-example.XXXXXX")
pids=()
names=()

# start NAME COMMAND...: runs COMMAND in the background, its output in $work/NAME.log. Each process
# is in a session of its own (setsid, which execs it: the PID is the process's own), so Ctrl-C
# reaches this script alone, and it stops them in order, once each.
start() {
    local name=$1
    shift
    setsid "$@" > "$work/$name.log" 2>&1 < /dev/null &
    pids+=("$!")
    names+=("$name")
}

# stop SECONDS PID...: SIGTERM to each, up to SECONDS for all of them to end, then SIGKILL.
stop() {
    local seconds=$1 pid
    shift
    for pid in "$@"; do kill -TERM "$pid" 2> /dev/null || true; done
    local deadline=$((SECONDS + seconds))
    for pid in "$@"; do
        while kill -0 "$pid" 2> /dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        kill -KILL "$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
    done
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if ((${#pids[@]} > 1)); then
        echo "fleet-example: stopping the workers and gateways" >&2
        # Workers and gateways first, while Redis is still there for what they write on the way out.
        stop 15 "${pids[@]:1}"
    fi
    if ((${#pids[@]} > 0)); then
        stop 5 "${pids[0]}"
    fi
    echo "fleet-example: stopped; logs and Redis's files kept in $work" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every process started so far still running, else its log's end and a failure.
all_running() {
    local i
    for i in "${!pids[@]}"; do
        if ! kill -0 "${pids[i]}" 2> /dev/null; then
            echo "fleet-example: ${names[i]} (pid ${pids[i]}) ended; the end of $work/${names[i]}.log:" >&2
            tail -n 20 "$work/${names[i]}.log" >&2 || true
            exit 1
        fi
    done
}

# wait_for WHAT SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds; fails naming WHAT
# after SECONDS, or at once when a process has ended.
wait_for() {
    local what=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        all_running
        ((SECONDS < deadline)) || die "$what: not within $seconds s (logs in $work)"
        sleep 0.1
    done
}

# Redis answers PING with +PONG (not -LOADING while it reads its AOF).
redis_answers() {
    (
        exec 3<> "/dev/tcp/127.0.0.1/$redis_port"
        printf 'PING\r\n' >&3
        IFS= read -r -t 2 reply <&3
        [ "$reply" = $'+PONG\r' ]
    ) 2> /dev/null
}

# A gateway's /ping answers 200 (204 while the handler starts).
gateway_ready() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/ping")" = 200 ]
}

# A worker has logged "Fleet worker <id> serving endpoint <E> from <host:port>".
worker_ready() {
    grep -q "serving endpoint" "$work/$1.log"
}

# Redis: loopback only, AOF in $work, nothing evicted (a fleet's keys must never be).
start redis redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work" --save '' \
    --appendonly yes --appendfsync "$fsync" --maxmemory-policy noeviction --daemonize no --logfile ''
wait_for "redis-server answering on port $redis_port" 10 redis_answers

# Two gateways: the first also runs jobs (WORKER_CONCURRENCY's default, 1), the second only serves
# the API. Worker ids are set so that a job's `worker` field says which process holds it.
RUNPOD_POD_ID=gateway-1 start gateway-1 "$echo_bin" --local --port "${gateway_ports[0]}"
RUNPOD_POD_ID=gateway-2 start gateway-2 "$echo_bin" --local --port "${gateway_ports[1]}" --gateway-only
for ((n = 1; n <= workers; n++)); do
    RUNPOD_POD_ID=worker-$n start "worker-$n" "$echo_bin"
done
for port in "${gateway_ports[@]}"; do
    wait_for "the gateway on port $port answering /ping" 30 gateway_ready "$port"
done
for ((n = 1; n <= workers; n++)); do
    wait_for "worker-$n logging that it serves $endpoint" 30 worker_ready "worker-$n"
done

# Smoke check: one /runsync through each gateway. The second runs no jobs itself, so its answer
# went through Redis to another process.
for port in "${gateway_ports[@]}"; do
    body=$(curl -sS --max-time 60 -XPOST "http://127.0.0.1:$port/runsync" -H 'Content-Type: application/json' \
        -d "{\"input\": {\"hello\": \"fleet\", \"gateway\": $port}}") || die "/runsync on port $port failed (logs in $work)"
    [[ $body =~ \"status\":[[:space:]]*\"COMPLETED\" ]] || die "/runsync on port $port answered: $body"
    echo "smoke check, port $port: $body"
done

cat << EOF

Fleet '$endpoint' is up. Logs and Redis's files: $work
  redis-server   127.0.0.1:$redis_port  (AOF, appendfsync $fsync)   pid ${pids[0]}
  gateway-1      http://127.0.0.1:${gateway_ports[0]}  (also runs jobs)  pid ${pids[1]}
  gateway-2      http://127.0.0.1:${gateway_ports[1]}  (--gateway-only)  pid ${pids[2]}
$(for ((n = 1; n <= workers; n++)); do printf '  %-14s                                  pid %s\n' "worker-$n" "${pids[n + 2]}"; done)

Call either gateway; a job's id is good on both:
  curl -s -XPOST localhost:${gateway_ports[0]}/runsync -H 'Content-Type: application/json' -d '{"input": {"hello": "world"}}'
  curl -s -XPOST localhost:${gateway_ports[1]}/runsync -H 'Content-Type: application/json' -d '{"input": {"hello": "world"}}'
  curl -s -XPOST localhost:${gateway_ports[1]}/run -H 'Content-Type: application/json' -d '{"input": {"sleep": 30}}'   # → {"id": …}
  curl -s localhost:${gateway_ports[0]}/status/<id>

A worker's death: the process holding the job is  redis-cli -p $redis_port HGET 'fleet:{$endpoint}:job:<id>' worker
SIGKILL it (kill -9 <its pid above>) and another takes the job within FLEET_LEASE_SECONDS (15) and
about a second; /status shows it IN_PROGRESS again, then COMPLETED.

Ctrl-C stops everything.
EOF

# Until Ctrl-C. A process that ends (one you killed) is reported once; the others go on.
reported=()
while true; do
    for i in "${!pids[@]}"; do
        if [ -z "${reported[i]:-}" ] && ! kill -0 "${pids[i]}" 2> /dev/null; then
            reported[i]=1
            echo "fleet-example: ${names[i]} (pid ${pids[i]}) ended; its log: $work/${names[i]}.log" >&2
        fi
    done
    sleep 1
done
