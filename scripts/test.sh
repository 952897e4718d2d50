#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what is needed, builds, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

# The process tests run the built executables (echo, mock-platform): build everything first.
swift build --build-tests
log=$(mktemp)
# Suites that saturate every core run in passes of their own, after the rest, so they neither
# disturb nor are disturbed by the timing checks elsewhere.
swift test --skip-build --skip LoadTests --skip VectorIndexTests 2>&1 | tee "$log"
swift test --skip-build --filter LoadTests 2>&1 | tee -a "$log"
swift test --skip-build --filter VectorIndexTests 2>&1 | tee -a "$log"
# Swift Testing prints its own summary; a zero-test run must not pass silently.
[ "$(grep -Ec "Test run with [1-9][0-9]* tests? .*passed" "$log")" -eq 3 ] || { echo "a test pass ran no test" >&2; exit 1; }

# The official clients (runpod 1.12.0's Endpoint, the openai SDK) against `echo --local`.
venv=.build/python-venv
if [ ! -x "$venv/bin/pytest" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check runpod==1.12.0 openai pytest
fi
ECHO_BIN="$(swift build --show-bin-path)/echo" "$venv/bin/python" -m pytest -q Tests/python
