"""`crossdock run PATH... [--once] [--watch] [--check] [--data DIR] [--drain-timeout S] [--journal-retention D]`:
the daemon."""

from __future__ import annotations

import argparse
import signal
import sys
from importlib.util import find_spec

import anyio

from crossdock.commands.common import add_data_option, data_dir, load_clean
from crossdock.dsl.lint import LintResult, lint, unset_references
from crossdock.dsl.report import as_text
from crossdock.engine import heap
from crossdock.engine.engine import DEFAULT_JOURNAL_RETENTION, Engine, embedded_stores
from crossdock.engine.errors import CrossdockError
from crossdock.engine.plan import Plan
from crossdock.engine.services import Services
from crossdock.engine.stats import EngineStats
from crossdock.ops.admin import DEFAULT_ADMIN_USER, operations
from crossdock.ops.lineage import retention_seconds
from crossdock.ops.logging import LOG_FORMATS, LOG_LEVELS, configure_logging
from crossdock.ops.reload import RouteWatcher


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("run", help="run the routes (a daemon; --once drains and exits)")
    parser.add_argument("paths", nargs="+", help="route files or folders")
    parser.add_argument("--once", action="store_true", help="process what is waiting now, then exit")
    parser.add_argument("--drain-timeout", type=float, default=30.0,
                        help="seconds in-flight messages get to finish after SIGINT/SIGTERM (default 30)")
    parser.add_argument("--watch", action="store_true",
                        help="reload the route files when they change and lint clean (not with --once)")
    parser.add_argument("--check", action="store_true",
                        help="only check that the routes would start: lint and env/secrets; exit 0 or 1")
    parser.add_argument("--journal-retention", type=retention_seconds, default=DEFAULT_JOURNAL_RETENTION,
                        metavar="DURATION",
                        help="how long journal events and business keys are kept, such as 30d or 12h "
                             "(default 30d)")
    parser.add_argument("--admin", metavar="HOST:PORT",
                        help="serve /metrics, /health, /ready and the console on this address, such as "
                             "127.0.0.1:9464")
    parser.add_argument("--admin-user", default=DEFAULT_ADMIN_USER,
                        help="the admin port's user for write actions (default admin); the password is "
                             "CROSSDOCK_ADMIN_PASSWORD, from the environment or the secrets folder")
    parser.add_argument("--log-format", choices=LOG_FORMATS,
                        help="json lines (the default when stderr is not a terminal) or console (one "
                             "readable line per event)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                        help="info (default) logs every stage of every message; warning only retries, "
                             "dead letters and problems; debug adds the libraries' own detail")
    add_data_option(parser)
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Exit 0 after a clean drain or stop; 1 when the routes do not lint or settings are missing."""
    if args.watch and args.once:
        print("crossdock run: --watch keeps running; it cannot be used with --once", file=sys.stderr)
        return 2
    if args.check:
        return _check(args.paths)
    plan, result = load_clean(args.paths, "run")
    if plan is None:
        return 1
    missing = unset_references(plan)
    if missing:
        for reference in missing:
            what = "environment variable" if reference.source == "env" else "secret"
            code = "ENV001" if reference.source == "env" else "SEC001"
            print(f"{reference.span}: {code} error: {what} '{reference.name}' is not set", file=sys.stderr)
        print("crossdock run: refusing to start until they are set", file=sys.stderr)
        return 1
    configure_logging(args.log_format, level=LOG_LEVELS[args.log_level])
    heap.settle()
    # uvloop: the HTTP intake server runs in this loop, and uvloop roughly doubles what it serves.
    try:
        stats, failed = anyio.run(_run, plan, result, args,
                                  backend_options={"use_uvloop": find_spec("uvloop") is not None})
    except CrossdockError as error:  # the admin port could not be served
        print(f"crossdock run: {error.code} {error}", file=sys.stderr)
        return 1
    print(render_summary(stats))
    for name, error in failed.items():
        print(f"route {name!r} stopped: {error.code} {error}", file=sys.stderr)
    return 1 if failed else 0


def _check(paths: list[str]) -> int:
    """`--check`: print what would keep `crossdock run` from starting (and any warning); 1 if anything would."""
    result = lint(paths)
    files = {m.path: m.text for m in result.project.modules}
    sys.stdout.write(as_text(result.diagnostics, files))
    missing = unset_references(result.plan) if result.plan is not None and not result.errors else []
    for reference in missing:
        what = "environment variable" if reference.source == "env" else "secret"
        code = "ENV001" if reference.source == "env" else "SEC001"
        print(f"{reference.span}: {code} error: {what} '{reference.name}' is not set")
    if result.errors or missing or result.plan is None:
        print("crossdock run --check: the routes would not start")
        return 1
    print(f"crossdock run --check: {len(result.plan.routes)} route(s) would start")
    return 0


async def _run(plan: Plan, result: LintResult,
               args: argparse.Namespace) -> tuple[EngineStats, dict[str, CrossdockError]]:
    async with embedded_stores(data_dir(args)) as stores:
        engine = Engine(plan, Services(stores=stores, data_dir=data_dir(args), partners=plan.partners),
                        journal_retention=args.journal_retention)
        watch = RouteWatcher(args.paths, engine, result.project).run if args.watch else None
        stop = anyio.Event()
        async with operations(engine, admin=args.admin, admin_user=args.admin_user, stop=stop), \
                anyio.create_task_group() as group:
            group.start_soon(_watch_signals, stop, group.cancel_scope)
            await engine.run(once=args.once, stop=stop, drain_timeout=args.drain_timeout, watch=watch)
            group.cancel_scope.cancel()
        dead_letters = await stores.dead_letters.count()
    engine.stats.dead_letter_store = dead_letters
    failed = {name: runner.failure for name, runner in engine.runners.items() if runner.failure is not None}
    return engine.stats, failed


async def _watch_signals(stop: anyio.Event, scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for received in signals:
            print(f"crossdock run: {signal.Signals(received).name}: draining in-flight messages", file=sys.stderr)
            stop.set()
            return


def render_summary(stats: EngineStats) -> str:
    """The table printed when `run` ends: per route, what was received, delivered, dead-lettered."""
    columns = ("received", "delivered", "filtered", "duplicates", "dead_lettered", "retried")
    width = max([len("route"), *(len(name) for name in stats.routes)])
    lines = ["route".ljust(width) + "  " + "  ".join(c.replace("_", "-").rjust(9) for c in columns)]
    for name, route in stats.routes.items():
        values = route.as_dict()
        lines.append(name.ljust(width) + "  " + "  ".join(str(values[c]).rjust(9) for c in columns))
        for sink, count in sorted(route.deliveries.items()):
            lines.append(f"  {sink}: {count} delivered")
    lines.append(f"dead-letter store: {stats.dead_letter_store} entr{'y' if stats.dead_letter_store == 1 else 'ies'}"
                 " (crossdock dlq list)")
    return "\n".join(lines)
