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
    """The `Target.Suite/test()` ids a report ran, and those it skipped for a reason of the
    machine's (not the pass traits' "runs in the ... pass"), with the reason."""
    ran, refused = set(), {}
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        test = f'{case.get("classname")}/{case.get("name")}'
        skipped = case.find("skipped")
        if skipped is None:
            ran.add(test)
        elif not (skipped.text or "").startswith("runs in the "):
            refused[test] = skipped.text or "no reason given"
    return ran, refused


def main():
    listed = {line.strip() for line in open(sys.argv[1]) if line.strip()}
    reports = {path: executed(path) for path in sys.argv[2:]}
    passes = {path: ran for path, (ran, _) in reports.items()}
    refused = {test: reason for _, (_, skipped) in reports.items() for test, reason in skipped.items()}
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
        if test in refused:
            print(f"skipped on this machine: {test}: {refused[test]}", file=sys.stderr)
        else:
            problems.append(f"{test} ran in no pass: check its suite's pass trait")
    for problem in problems:
        print(problem, file=sys.stderr)
    total = sum(len(ran) for ran in passes.values())
    print(f"test passes: {total} tests ran, {len(listed)} listed, {len(set(refused) - set(seen))} skipped on this machine, "
          + ", ".join(f"{len(r)} in {p}" for p, r in passes.items()))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
