"""`crossdock lint PATH... [--format text|json|sarif] [--require-env]`."""

from __future__ import annotations

import argparse
import sys

from crossdock import __version__
from crossdock.dsl.lint import lint
from crossdock.dsl.report import as_json, as_sarif, as_text


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("lint", help="check route files: syntax, names, options, maps, policies")
    parser.add_argument("paths", nargs="+", help="route files or folders")
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    parser.add_argument("--require-env", action="store_true",
                        help="report env and secret names that are not set (ENV001, SEC001)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Exit 0 when clean (warnings allowed), 1 with errors, 2 when nothing could be read."""
    result = lint(args.paths, require_env=args.require_env)
    diagnostics = result.diagnostics
    if args.format == "json":
        sys.stdout.write(as_json(diagnostics))
    elif args.format == "sarif":
        sys.stdout.write(as_sarif(diagnostics, __version__))
    else:
        files = {m.path: m.text for m in result.project.modules}
        sys.stdout.write(as_text(diagnostics, files))
    if not result.project.files or any(d.code.startswith("IO") for d in result.errors):
        return 2
    return 1 if result.errors else 0
