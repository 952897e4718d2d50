#!/usr/bin/env bash
# Proves scripts/new-handler: generates a handler in this tree, validates its templates, builds it,
# runs its tests and its --test-input, then removes everything it made (Package.swift restored).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
name=scaffold-check
type=ScaffoldCheck
backup=$(mktemp)
cp Package.swift "$backup"
cleanup() {
    cp "$backup" Package.swift
    rm -rf "Handlers/$type" "Tests/${type}Tests" "Dockerfiles/$name.Dockerfile" "templates/$name" "$backup"
}
trap cleanup EXIT
python3 scripts/new-handler "$name" >/dev/null
python3 scripts/check-templates.py >/dev/null
swift build --build-tests >/dev/null
swift test --skip-build --filter "${type}Tests" 2>&1 | grep -q "Test run with 2 tests in 1 suite passed" \
    || { swift test --skip-build --filter "${type}Tests" 2>&1 | tail -20 >&2; echo "check-scaffold: the generated handler's tests failed" >&2; exit 1; }
output=$("$(swift build --show-bin-path)/$name" --test-input '{"input": {"action": "greet", "name": "CI"}}' 2>&1)
grep -q '"greeting":"Hello, CI!"' <<<"$output" || { echo "check-scaffold: $name --test-input: $output" >&2; exit 1; }
echo "new-handler: a generated handler builds, passes its tests and answers --test-input"
