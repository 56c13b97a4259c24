"""`crossdock dlq list | show ID | replay ID... [--route R] | purge`: the dead-letter store."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import anyio

from crossdock.commands.common import add_data_option, data_dir, load_clean
from crossdock.engine.engine import embedded_stores
from crossdock.engine.message import Outcome
from crossdock.engine.runtime import RouteRunner
from crossdock.engine.services import Services
from crossdock.engine.stats import RouteStats
from crossdock.engine.stores.base import DeadLetter, Stores


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("dlq", help="list, show, replay or purge dead letters")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="dead letters, newest first")
    listing.add_argument("--route")
    listing.add_argument("--code", help="only entries whose last error has this code")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--all", action="store_true", help="include entries already replayed")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    show = actions.add_parser("show", help="one entry: error chain, attempts, payload")
    show.add_argument("id")
    replay = actions.add_parser("replay", help="run entries again (same correlation id and idempotency key)")
    replay.add_argument("ids", nargs="*")
    replay.add_argument("--route", help="replay every open entry of this route")
    replay.add_argument("--routes", default="routes", help="the route folder (default: routes)")
    replay.add_argument("--from-start", action="store_true",
                        help="start from the original payload instead of the failed step")
    purge = actions.add_parser("purge", help="delete entries")
    purge.add_argument("ids", nargs="*")
    purge.add_argument("--route")
    purge.add_argument("--before", help="ISO date: entries created before it")
    purge.add_argument("--all", action="store_true", help="every entry")
    for sub in (listing, show, replay, purge):
        add_data_option(sub)
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    return anyio.run(_ACTIONS[args.action], args)


async def _list(args: argparse.Namespace) -> int:
    async with embedded_stores(data_dir(args)) as stores:
        entries = await stores.dead_letters.list(route=args.route, code=args.code, limit=args.limit)
    if not args.all:
        entries = [e for e in entries if e.replayed_at is None]
    if args.format == "json":
        print(json.dumps([_summary(e) for e in entries], indent=2))
        return 0
    if not entries:
        print("no dead letters")
        return 0
    for entry in entries:
        when = _when(entry.created_at)
        state = f" (replayed {entry.replay_count}x)" if entry.replayed_at else ""
        print(f"{entry.id}  {when}  {entry.route}  {entry.step}  {entry.code}: {_error_text(entry.error)}{state}")
    print(f"{len(entries)} dead letter(s)")
    return 0


async def _show(args: argparse.Namespace) -> int:
    async with embedded_stores(data_dir(args)) as stores:
        entry = await stores.dead_letters.get(args.id)
    if entry is None:
        print(f"crossdock dlq: no dead letter '{args.id}'", file=sys.stderr)
        return 1
    print(json.dumps({**_summary(entry), "headers": entry.headers, "meta": entry.meta,
                      "error_chain": entry.error_chain, "attempts": entry.attempts}, indent=2, default=str))
    print("--- payload ---")
    print(entry.payload.decode("utf-8", errors="replace"))
    return 0


async def _replay(args: argparse.Namespace) -> int:
    if not args.ids and not args.route:
        print("crossdock dlq replay: give entry ids or --route", file=sys.stderr)
        return 2
    plan, _ = load_clean([args.routes], "dlq replay")
    if plan is None:
        return 1
    failures = 0
    async with embedded_stores(data_dir(args)) as stores:
        entries = await _selected(stores, args)
        if entries is None:
            return 1
        runners: dict[str, RouteRunner] = {}
        async with AsyncExitStack() as stack:
            for entry in entries:
                route = plan.routes.get(entry.route)
                if route is None:
                    print(f"{entry.id}: route '{entry.route}' no longer exists; kept", file=sys.stderr)
                    failures += 1
                    continue
                runner = runners.get(entry.route)
                if runner is None:
                    services = Services(stores=stores, data_dir=data_dir(args), partners=plan.partners)
                    runner = RouteRunner(route, services, RouteStats())
                    await runner.open_sinks(stack)
                    runners[entry.route] = runner
                outcome = await runner.replay(entry, from_start=args.from_start)
                await stores.dead_letters.mark_replayed(entry.id, runner.services.clock.now())
                failures += outcome is Outcome.DEAD_LETTERED
                print(f"{entry.id}: {outcome.value}")
    return 1 if failures else 0


async def _selected(stores: Stores, args: argparse.Namespace) -> list[DeadLetter] | None:
    if args.ids:
        entries = []
        for entry_id in args.ids:
            entry = await stores.dead_letters.get(entry_id)
            if entry is None:
                print(f"crossdock dlq: no dead letter '{entry_id}'", file=sys.stderr)
                return None
            entries.append(entry)
        return entries
    listed = await stores.dead_letters.list(route=args.route, limit=100_000)
    return [e for e in reversed(listed) if e.replayed_at is None]


async def _purge(args: argparse.Namespace) -> int:
    before = None
    if args.before:
        try:
            before = datetime.fromisoformat(args.before).replace(tzinfo=UTC).timestamp()
        except ValueError:
            print(f"crossdock dlq purge: --before takes an ISO date, not {args.before!r}", file=sys.stderr)
            return 2
    if not (args.ids or args.route or before is not None or args.all):
        print("crossdock dlq purge: give ids, --route, --before or --all", file=sys.stderr)
        return 2
    async with embedded_stores(data_dir(args)) as stores:
        if args.ids:
            removed = await stores.dead_letters.delete(args.ids)
        else:
            removed = await stores.dead_letters.purge(route=args.route, before=before)
    print(f"purged {removed} dead letter(s)")
    return 0


def _error_text(error: dict[str, Any]) -> str:
    """The message, with where it happened: the payload position or the map line."""
    text = str(error.get("message", ""))
    position = error.get("position")
    if position:
        text += " (" + ", ".join(f"{k} {v}" for k, v in position.items()) + ")"
    if error.get("map_line"):
        text += f" at {error['map_line']}"
    return text


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _summary(entry: DeadLetter) -> dict[str, Any]:
    return {
        "id": entry.id,
        "created_at": _when(entry.created_at),
        "route": entry.route,
        "step": entry.step,
        "code": entry.code,
        "error": _error_text(entry.error),
        "correlation_id": entry.correlation_id,
        "business_key": entry.business_key,
        "attempts": len(entry.attempts),
        "replayed_at": _when(entry.replayed_at) if entry.replayed_at else None,
    }


_ACTIONS = {"list": _list, "show": _show, "replay": _replay, "purge": _purge}
