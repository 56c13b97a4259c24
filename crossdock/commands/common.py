"""What several subcommands share: where the data folder is, and loading routes that lint clean."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from crossdock.dsl.lint import LintResult, lint
from crossdock.dsl.report import as_text
from crossdock.engine.plan import Plan

DATA_ENV = "CROSSDOCK_DATA"


def add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=None,
                        help=f"folder of the embedded stores (default: ${DATA_ENV} or ./data)")


def data_dir(args: argparse.Namespace) -> Path:
    """The data folder: --data, else $CROSSDOCK_DATA, else ./data."""
    if getattr(args, "data", None) is not None:
        return Path(args.data)
    return Path(os.environ.get(DATA_ENV, "data"))


def load_clean(paths: list[str], what: str) -> tuple[Plan | None, LintResult]:
    """Lint `paths`; print the errors and return no plan when there are any."""
    result = lint(paths)
    if result.errors or result.plan is None:
        files = {m.path: m.text for m in result.project.modules}
        sys.stderr.write(as_text(result.errors, files))
        print(f"crossdock {what}: refusing to start: the routes do not lint clean", file=sys.stderr)
        return None, result
    return result.plan, result
