"""Benchmark (a): the demo route over N orders against a hand-written loop doing the same work.

Both sides read the same N web-order files, decode them with exact decimals, map them to canonical
Orders, validate them, put each on its warehouse's SQLite queue (one durable commit per order), write
it as canonical JSON for the ERP (temp file, fsync, rename) and move the input to `done`. crossdock
also does what the loop does not: duplicate check, journal, dead-letter bookkeeping, retry wrappers,
back pressure. Printed: orders per second for each and the ratio.

    .venv/bin/python bench/engine_overhead.py [--orders N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import anyio
import orjson
from map_speed import by_hand  # the same hand-written mapping as benchmark (b); bench/ is on sys.path

from crossdock.canonical import to_plain
from crossdock.canonical.order import Order
from crossdock.dsl.lint import lint
from crossdock.engine import heap
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.services import Services

REPO = Path(__file__).resolve().parents[1]
QUEUES = {"DAL": "orders.dallas", "RNO": "orders.reno"}


def write_inbox(inbox: Path, count: int) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    template = json.loads((REPO / "examples" / "webstore-orders" / "order-1001.json").read_text())
    for number in range(count):
        template["number"] = str(100_000 + number)
        template["fulfillment"]["warehouse"] = ("Dallas", "reno", "")[number % 3]
        (inbox / f"order-{number:06d}.json").write_text(json.dumps(template))


def _default(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(type(value).__name__)


def hand_written(data: Path) -> int:
    """The same pipeline as a plain loop: no journal, no idempotency, no retry, one order at a time."""
    inbox, done, outbox = data / "inbox", data / "inbox" / "done", data / "outbox" / "erp"
    done.mkdir(parents=True, exist_ok=True)
    outbox.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(data / "queues.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS q (queue TEXT, message_id TEXT, body BLOB, UNIQUE(queue, message_id))")
    count = 0
    for path in sorted(inbox.glob("*.json")):
        order = json.loads(path.read_bytes(), parse_float=Decimal)
        canonical = to_plain(Order.model_validate(by_hand(order)))
        body = orjson.dumps(canonical, default=_default)
        queue = QUEUES.get(canonical["ship_from"], "orders.unassigned")
        with db:
            db.execute("INSERT OR IGNORE INTO q VALUES (?, ?, ?)", (queue, canonical["po_number"], body))
        temp = outbox / f".{canonical['po_number']}.tmp"
        with open(temp, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, outbox / f"{canonical['po_number']}.json")
        os.replace(path, done / path.name)
        count += 1
    db.close()
    return count


async def with_crossdock(data: Path) -> int:
    result = lint([REPO / "routes"])
    assert result.plan is not None and not result.errors
    async with embedded_stores(data) as stores:
        engine = Engine(result.plan, Services(stores=stores, data_dir=data))
        await engine.run(once=True, stop=anyio.Event())
    return engine.stats.routes["Web store orders"].received


def timed(label: str, count: int, work: Callable[[Path], int]) -> float:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        write_inbox(data / "inbox", count)
        start = time.perf_counter()
        handled = work(data)
        elapsed = time.perf_counter() - start
        assert handled == count, f"{label} handled {handled} of {count}"
        assert len(list((data / "outbox" / "erp").glob("*.json"))) == count
        shutil.rmtree(data / "inbox")
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    args = parser.parse_args()
    heap.settle()  # the process set up as `crossdock run` sets it up, for both sides
    hand = timed("hand-written", args.orders, hand_written)
    ours = timed("crossdock", args.orders, lambda data: anyio.run(with_crossdock, data))
    print(f"demo route over {args.orders} order files (durable writes on both sides)")
    print(f"hand-written loop: {hand:,.0f} orders/s")
    print(f"crossdock run    : {ours:,.0f} orders/s")
    print(f"ratio            : {ours / hand:.2f}")


if __name__ == "__main__":
    main()
