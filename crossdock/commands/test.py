"""`crossdock test PATH... [--update]`: run map fixtures, print diffs, end with `N passed, N failed`.

The routes must lint clean first. Each case prints `PASS`, `FAIL` (with the reason or the diff,
indented) or, with `--update`, `UPDATED` when its golden file was (re)written; a `test` block that
cannot run (TST001, TST002) prints its problem and counts as failed. Exit code: 0 when nothing
failed, 1 otherwise, 2 when no route file was found. Cases and golden files are described in
:mod:`crossdock.engine.maptest`.
"""

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
            case.expected.parent.mkdir(parents=True, exist_ok=True)
            case.expected.write_bytes(outcome.actual)  # pretty JSON, ending with a newline
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
