#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what is needed, builds, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

# The process tests run the built executables (echo, mock-platform): build everything first.
swift build --build-tests
swift test --skip-build --parallel 2>&1 | tee /tmp/swift-test.log
status=${PIPESTATUS[0]}
# Swift Testing prints its own summary; a zero-test run must not pass silently.
grep -Eq "Test run with [1-9][0-9]* tests? .*passed" /tmp/swift-test.log || { echo "no Swift Testing run passed" >&2; exit 1; }
exit "$status"
