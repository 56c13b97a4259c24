"""`crossdock test PATH... [--update]`: run map fixtures, print diffs, end with `N passed, N failed`."""

from __future__ import annotations

import argparse
import sys

from crossdock.dsl.lint import lint
from crossdock.dsl.report import as_text
from crossdock.engine.maptest import discover, run_case


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("test", help="run maps on sample files and compare with golden files")
    parser.add_argument("paths", nargs="+", help="route files or folders")
    parser.add_argument("--update", action="store_true", help="write the actual output into each golden file")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Exit 0 only when every case passed; 1 when one failed or the routes do not lint."""
    result = lint(args.paths)
    if result.errors or result.plan is None:
        files = {m.path: m.text for m in result.project.modules}
        sys.stdout.write(as_text(result.errors, files))
        print("0 passed, 0 failed (fix the errors above first)")
        return 2 if not result.project.files else 1
    cases, problems = discover(result.plan.maps)
    for problem in problems:
        print(problem)
    passed = failed = 0
    for case in cases:
        outcome = run_case(result.plan.maps[case.map_name], case)
        label = f"map '{case.map_name}' case '{case.name}'"
        if outcome.passed:
            passed += 1
            print(f"PASS {label}")
            continue
        if args.update and outcome.actual is not None:
            case.expected.write_bytes(outcome.actual + b"\n")
            passed += 1
            print(f"UPDATED {label}: wrote {case.expected}")
            continue
        failed += 1
        print(f"FAIL {label} ({case.input})")
        for line in outcome.detail.splitlines():
            print(f"    {line}")
    failed += len(problems)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1
