"""The `crossdock` command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `crossdock` console script."""
    print("crossdock: not wired yet", file=sys.stderr)
    return 2
