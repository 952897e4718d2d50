#!/usr/bin/env python3
"""Checks that the test passes together ran every test exactly once.

Usage: check-test-passes.py LIST PASS.xml...
LIST is `swift test list` output (one `Target.Suite/test()` a line); each PASS.xml is the
Swift Testing xUnit report of one pass. Fails (exit 1) when a pass ran no test, a test ran in
two passes, or a listed test ran in none (a suite with no pass trait runs in every pass; one
whose condition is wrong runs in none)."""
import sys
import xml.etree.ElementTree as ElementTree


def executed(path):
    """The `Target.Suite/test()` ids a report ran (skipped ones excluded)."""
    ran = set()
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        if case.find("skipped") is not None:
            continue
        ran.add(f'{case.get("classname")}/{case.get("name")}')
    return ran


def main():
    listed = {line.strip() for line in open(sys.argv[1]) if line.strip()}
    passes = {path: executed(path) for path in sys.argv[2:]}
    problems = []
    for path, ran in passes.items():
        if not ran:
            problems.append(f"{path}: the pass ran no test")
    seen = {}
    for path, ran in passes.items():
        for test in ran:
            if test in seen:
                problems.append(f"{test} ran in two passes ({seen[test]}, {path}): give its suite one pass trait")
            seen[test] = path
    for test in sorted(listed - set(seen)):
        problems.append(f"{test} ran in no pass: check its suite's pass trait")
    for problem in problems:
        print(problem, file=sys.stderr)
    total = sum(len(ran) for ran in passes.values())
    print(f"test passes: {total} tests ran, {len(listed)} listed, " + ", ".join(f"{len(r)} in {p}" for p, r in passes.items()))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
