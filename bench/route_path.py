"""The engine's own cost per message, without any I/O: where the AMQP route benchmark's gap comes from.

The route of `bench/amqp_route.py` (read json, map with the demo map, to amqp) is run message by
message through `RouteRunner.handle`, its sink replaced by one that keeps nothing and its source by
in-memory deliveries, so what is measured is the runtime alone: decode, map, validate, encode, the
journal (SQLite, flushed as the engine does), the stage telemetry (metrics, logs) and the bookkeeping.
It is run four ways: as `crossdock run` runs it, without telemetry, without the journal, and without
both, against the hand-written transform of `bench/amqp_route.py` (decode, map, validate, encode).
Printed: CPU microseconds a message for each (best of `--repeat`), and the hand-written share.

    .venv/bin/python bench/route_path.py [--messages N] [--repeat R]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import orjson
from amqp_route import ROUTE, Names, orders  # bench/ is on sys.path
from map_speed import by_hand

from crossdock.canonical import to_plain
from crossdock.canonical.order import Order
from crossdock.dsl.lint import lint
from crossdock.engine import heap
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.message import Inbound, Message, Outcome
from crossdock.engine.outgoing import per_message_options
from crossdock.engine.plan import Plan, SinkPlan, walk_steps
from crossdock.engine.runtime import RouteRunner, Services
from crossdock.engine.stores.base import JournalEvent
from crossdock.ops import NULL_OBSERVER

REPO = Path(__file__).resolve().parents[1]
WAYS = ("as run", "no telemetry", "no journal", "neither")


class KeptNowhere:
    """A sink that takes every message at once (the broker's part is measured by amqp_route.py)."""

    async def send(self, message: Message) -> None:
        return None


class JournalOfNothing:
    """A journal that keeps nothing, to tell the journal's share."""

    async def record(self, event: JournalEvent) -> None:
        return None

    async def record_keys(self, *, at: float, route: str, correlation_id: str, keys: Sequence[str]) -> None:
        return None

    async def flush(self) -> None:
        return None


async def _ack(outcome: Outcome) -> None:
    return None


async def _release() -> None:
    return None


def _plan(folder: Path) -> Plan:
    routes = folder / "routes"
    routes.mkdir()
    shutil.copy(REPO / "routes" / "webstore-map.route", routes)
    shutil.copytree(REPO / "routes" / "schemas", routes / "schemas")
    (routes / "bench.route").write_text(ROUTE.format(prefetch=100, concurrency=32, **Names.fresh("path").__dict__))
    result = lint([routes])
    assert result.plan is not None and not result.errors, [str(d) for d in result.errors]
    return result.plan


def _without_io(runner: RouteRunner) -> None:
    for step in walk_steps(runner.plan.steps):
        if isinstance(step, SinkPlan):
            runner.sinks[step.path] = KeptNowhere()  # type: ignore[assignment]
            runner.per_message[step.path] = per_message_options(step.endpoint, {})


async def engine_side(folder: Path, bodies: list[bytes], way: str, repeat: int) -> float:
    """CPU microseconds a message through `RouteRunner.handle`, best of `repeat` rounds."""
    place = folder / way.replace(" ", "-")
    place.mkdir()
    plan = _plan(place)
    best = float("inf")
    async with embedded_stores(place / "data") as stores:
        used = stores if way in ("as run", "no telemetry") else dataclasses.replace(stores, journal=JournalOfNothing())
        engine = Engine(plan, Services(stores=used, data_dir=place / "data", env={"AMQP_URL": "amqp://unused"}))
        runner = engine.runners["bench"]
        _without_io(runner)
        if way in ("no telemetry", "neither"):
            runner.observer = NULL_OBSERVER
        for _ in range(repeat):
            deliveries = [Inbound(body=body, message_id=str(n), ack=_ack, release=_release)
                          for n, body in enumerate(bodies)]
            start = time.process_time()
            for inbound in deliveries:
                await runner.handle(inbound)
            await used.journal.flush()
            best = min(best, (time.process_time() - start) / len(bodies) * 1e6)
        assert runner.stats.delivered == repeat * len(bodies), runner.stats.as_dict()
    return best


def _default(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(type(value).__name__)


def hand_side(bodies: list[bytes], repeat: int) -> float:
    """CPU microseconds a message for the hand-written transform of amqp_route.py, best of `repeat`."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for body in bodies:
            order = json.loads(body, parse_float=Decimal)
            orjson.dumps(to_plain(Order.model_validate(by_hand(order))), default=_default)
            _ids = (uuid.uuid4().hex, uuid.uuid4().hex)
        best = min(best, (time.process_time() - start) / len(bodies) * 1e6)
    return best


async def compare(args: argparse.Namespace) -> dict[str, Any]:
    bodies = orders(args.messages)
    with tempfile.TemporaryDirectory() as folder:
        figures = {way: await engine_side(Path(folder), bodies, way, args.repeat) for way in WAYS}
    figures["hand-written"] = hand_side(bodies, args.repeat)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    heap.settle()  # the process set up as `crossdock run` sets it up, for both sides
    figures = anyio.run(compare, args)
    hand = figures["hand-written"]
    print(f"the amqp_route.py route without I/O, {args.messages} messages, CPU per message, best of {args.repeat}")
    for way in WAYS:
        print(f"crossdock, {way:<13}: {figures[way]:6.1f} µs  (hand-written / this: {hand / figures[way]:.2f})")
    print(f"hand-written transform : {hand:6.1f} µs")
    print(f"journal's share        : {figures['as run'] - figures['no journal']:6.1f} µs")
    print(f"telemetry's share      : {figures['as run'] - figures['no telemetry']:6.1f} µs")


if __name__ == "__main__":
    main()
