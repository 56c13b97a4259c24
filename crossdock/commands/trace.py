"""`crossdock trace QUERY [--format text|json] [--data DIR]`: the story of a document across routes.

QUERY is a business key (`track by`, `skip duplicates by`), a correlation id or a dead-letter id; see
:mod:`crossdock.ops.lineage` for what each one finds. Exit codes: 0 found, 1 nothing found, 2 when the
data folder holds no crossdock stores (a mistyped `--data` is not taken for "never happened").
"""

from __future__ import annotations

import argparse
import json
import sys

import anyio

from crossdock.commands.common import add_data_option, data_dir
from crossdock.engine.engine import STORE_FILE, embedded_stores
from crossdock.ops.lineage import DEFAULT_LIMIT, Lineage, render_text, trace


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("trace", help="the story of a document (business key, correlation id or "
                                               "dead-letter id) across routes")
    parser.add_argument("query", help="a business key such as a PO number, a correlation id or a dead-letter id")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="the most journal events to read")
    add_data_option(parser)
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    folder = data_dir(args)
    if not (folder / STORE_FILE).is_file():
        print(f"crossdock trace: {folder} holds no crossdock stores (no {STORE_FILE}); is --data right?",
              file=sys.stderr)
        return 2
    lineage = anyio.run(_trace, args)
    if args.format == "json":
        print(json.dumps(lineage.to_dict(), indent=2, default=str))
    else:
        print(render_text(lineage))
    return 0 if lineage.found else 1


async def _trace(args: argparse.Namespace) -> Lineage:
    async with embedded_stores(data_dir(args)) as stores:
        return await trace(stores, args.query, limit=args.limit)
