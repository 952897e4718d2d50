#!/usr/bin/env bash
# Regenerates scripts/startup.order: the functions an echo and a memory worker run from process
# start to idle polling, in the order the linker should place them (see Package.swift). Runs each
# release binary under valgrind's callgrind against the mock platform for a few seconds.
# Usage: scripts/make-startup-order.sh   (after scripts/build-release.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq valgrind; }
bin=.build-release/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin/mock-platform" --long-poll-ms 100 --no-recording > "$work/platform" 2>/dev/null &
for _ in $(seq 50); do grep -q listening "$work/platform" && break; sleep 0.1; done
base="http://127.0.0.1:$(awk '{print $NF}' "$work/platform")"

for product in echo memory; do
    # valgrind cannot read the toolchain's DWARF 5; the symbol table is all it needs.
    objcopy --strip-debug "$bin/$product" "$work/$product"
    env -i PATH=/usr/bin:/bin HOME="$work" MEMORY_DIR="$work/volume" \
        RUNPOD_WEBHOOK_GET_JOB="$base/v2/ep/job-take/\$ID" RUNPOD_WEBHOOK_POST_OUTPUT="$base/v2/ep/job-done/\$RUNPOD_POD_ID/\$ID" \
        RUNPOD_WEBHOOK_POST_STREAM="$base/v2/ep/job-stream/\$RUNPOD_POD_ID/\$ID" RUNPOD_WEBHOOK_PING="$base/v2/ep/ping/\$RUNPOD_POD_ID" \
        RUNPOD_POD_ID=order RUNPOD_AI_API_KEY=order RUNPOD_LOG_LEVEL=ERROR \
        valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/$product.callgrind" "$work/$product" \
        > "$work/$product.log" 2>&1 &
    worker=$!
    sleep 20  # start-up, polls and a heartbeat, at valgrind's speed
    kill -TERM "$worker"
    wait "$worker" || true
done

python3 - "$work" > scripts/startup.order <<'PY'
import re, sys
work = sys.argv[1]
seen, order = set(), []
for product in ("echo", "memory"):
    objects, functions, current = {}, {}, None
    for line in open(f"{work}/{product}.callgrind", errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line)
        if m:
            kind, ident, name = m.groups()
            if name: objects[ident] = name
            if kind == "ob": current = objects.get(ident, "")
            continue
        m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line)
        if m:
            kind, ident, name = m.groups()
            if name: functions[ident] = name
            if kind == "fn" and current.endswith("/" + product) and functions[ident] not in seen:
                seen.add(functions[ident])
                order.append(functions[ident])
# Sorted: mangled names group by module, which keeps each module's start-up code together.
print("\n".join(sorted(order)))
PY
echo "scripts/startup.order: $(wc -l < scripts/startup.order) functions"
