"""The `crossdock` command line: lint, test, run, dlq, x12 and trace (each implemented in crossdock.commands)."""

from __future__ import annotations

import argparse
import sys

from crossdock import __version__
from crossdock.commands import dlq, lint, run, test, trace, x12

COMMANDS = (lint, test, run, dlq, x12, trace)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossdock", description="A config-driven integration engine.")
    parser.add_argument("--version", action="version", version=f"crossdock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `crossdock` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
