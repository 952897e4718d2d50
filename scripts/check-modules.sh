#!/usr/bin/env bash
# Checks that modules link only what they use:
# 1. the declared dependencies of the runtime's modules and client libraries (no HTTP server,
#    NIO or Prometheus below WorkerEndpointServer);
# 2. Examples/queue-worker, a handler outside this package that uses only the public API and no
#    WorkerEndpointServer: it builds, its test passes through the public harness, it runs a job,
#    and its binary contains no HTTP server, NIO or Prometheus code and links no full Foundation.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

swift package describe --type json > .build/package.json
python3 - .build/package.json <<'PY'
import json, sys
package = json.load(open(sys.argv[1]))
targets = {t["name"]: t for t in package["targets"]}
heavy = {"Hummingbird", "HummingbirdCore", "NIOCore", "NIOPosix", "NIOHTTP1", "Prometheus", "HTTPTypes"}

def closure(name, seen=None):
    """Every target and product a target reaches through its own targets."""
    seen = set() if seen is None else seen
    target = targets.get(name)
    if target is None or name in seen:
        return seen
    seen.add(name)
    seen.update(target.get("product_dependencies") or [])
    for dependency in target.get("target_dependencies") or []:
        closure(dependency, seen)
    return seen

expected = {
    "WorkerJSON": set(),
    "CurlHTTP": {"CCurl", "CCurlHelpers", "WorkerJSON"},
    "EndpointAPI": {"WorkerJSON"},
    "ConnectionPool": {"CEpoll"},
    "PostgresClient": {"CLibPQ", "ConnectionPool", "CEpoll", "WorkerJSON"},
    "RedisClient": {"CHiredis", "COpenSSL", "ConnectionPool", "CEpoll"},
    "EndpointClient": {"CurlHTTP", "CCurl", "CCurlHelpers", "EndpointAPI", "WorkerJSON"},
}
problems = []
for name, allowed in expected.items():
    reached = closure(name) - {name}
    if reached != allowed:
        problems.append(f"{name} reaches {sorted(reached)}, expected exactly {sorted(allowed)}")
for name in ("WorkerRuntime", "WorkerJSON", "CurlHTTP", "EndpointAPI", "RedisClient", "WorkerCache", "WorkerOpenAI", "EndpointClient", "PostgresClient"):
    leaked = closure(name) & heavy
    if leaked:
        problems.append(f"{name} links {sorted(leaked)}: only WorkerEndpointServer may")
for problem in problems:
    print("check-modules:", problem, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "module dependencies: as declared"

# The public face of the runtime's four modules (what a handler author sees and we must keep
# stable): declarations marked `public`, counted by their lines. Make package what only our own
# modules use rather than raising the limit.
public_limit=160
public_modules=(Sources/Runtime/WorkerJSON Sources/Clients/CurlHTTP Sources/Runtime/WorkerRuntime Sources/Runtime/WorkerEndpointServer)
public_count=0
for module in "${public_modules[@]}"; do
    count=$(grep -rhE '^\s*(@[A-Za-z]+(\([^)]*\))? )*public ' "$module" --include='*.swift' | grep -cvE '^\s*public (import|extension)\b' || true)
    echo "public declarations: $count in $module"
    public_count=$((public_count + count))
done
if [ "$public_count" -gt "$public_limit" ]; then
    echo "check-modules: the runtime's public face is $public_count declarations, over the limit of $public_limit" >&2
    exit 1
fi
echo "public face of the runtime: $public_count declarations (limit $public_limit)"

example=Examples/queue-worker
# The example names this package by a path whose last component is the package's name.
mkdir -p .build/local && ln -sfn ../.. .build/local/swift-worker-runtime
swift build --package-path "$example" --build-tests
swift test --package-path "$example" --skip-build
binary="$(swift build --package-path "$example" --show-bin-path)/QueueWorker"
output=$("$binary" --test-input '{"input": {"numbers": [1, 2, 3]}}')
echo "$output"
grep -q '"total":6' <<< "$output" || { echo "check-modules: the queue-only example did not answer" >&2; exit 1; }
# Swift symbols carry their module's name, length-prefixed, after `$s`.
if nm "$binary" | grep -Eq '\$s(11Hummingbird|15HummingbirdCore|7NIOCore|8NIOPosix|10Prometheus)'; then
    echo "check-modules: the queue-only example contains HTTP server, NIO or Prometheus code" >&2
    exit 1
fi
if ldd "$binary" | grep -Eq 'libFoundation\.so|libFoundationNetworking'; then
    echo "check-modules: the queue-only example links full Foundation" >&2
    exit 1
fi
echo "queue-only example: builds, tests, runs; links: $(ldd "$binary" | awk '{print $1}' | grep -E 'curl|swift|Foundation' | tr '\n' ' ')"
