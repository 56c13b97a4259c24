"""The runtime end to end on embedded connectors: delivery, dead letters, retry, duplicates, replay."""

from __future__ import annotations

import json
import random
from contextlib import AsyncExitStack
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
import recording_connector as recording

from crossdock.cli import main as cli_main
from crossdock.connectors import base as connectors
from crossdock.connectors.queue import QueueDatabase
from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.errors import PermanentError, TransientError, TransientKind
from crossdock.engine.message import Outcome
from crossdock.engine.plan import RetryPlan
from crossdock.engine.runtime import RouteRunner
from crossdock.engine.services import Services
from crossdock.engine.stats import RouteStats

pytestmark = pytest.mark.anyio

INBOX = """
connection "inbox" is file
  folder "inbox"
  files "*.json"
  settle 0s
end
"""

ORDER_MAP = """
map "Order in"
  from json
  to Order
  po_number = po
  order_date = "2026-11-01"
  ship_to = object
    name = name
  end
  ship_from = warehouse
  lines = for each items
    line_number = loop.index
    sku = sku
    quantity = decimal(qty)
    unit = "each"
  end
end
"""


@pytest.fixture(autouse=True)
def recording_sink(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(connectors._REGISTRY, "recording", "recording_connector")
    recording.reset()
    yield recording
    recording.reset()


def order(po: str, warehouse: str = "DAL", qty: str = "2") -> bytes:
    return json.dumps({"po": po, "name": "Acme", "warehouse": warehouse,
                       "items": [{"sku": "A-1", "qty": qty}]}).encode()


def project(tmp_path: Path, text: str) -> Path:
    routes = tmp_path / "routes"
    routes.mkdir(exist_ok=True)
    (routes / "test.route").write_text(INBOX + ORDER_MAP + text)
    return routes


def drop(tmp_path: Path, files: dict[str, bytes]) -> None:
    inbox = tmp_path / "data" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (inbox / name).write_bytes(body)


async def run_once(tmp_path: Path, routes: Path, clock: ManualClock | None = None) -> Engine:
    result = lint([routes])
    assert not result.errors, [str(d) for d in result.errors]
    assert result.plan is not None
    data = tmp_path / "data"
    async with embedded_stores(data) as stores:
        services = Services(stores=stores, data_dir=data, clock=clock or ManualClock(), rng=random.Random(7))
        engine = Engine(result.plan, services)
        await engine.run(once=True, stop=anyio.Event())
    return engine


async def dead_letters(tmp_path: Path):
    async with embedded_stores(tmp_path / "data") as stores:
        return list(reversed(await stores.dead_letters.list(limit=100)))


async def test_orders_are_delivered_and_sources_moved_to_done(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  map with "Order in"
  to recording channel "erp"
  dead letter to store
end
""")
    drop(tmp_path, {"a.json": order("PO-1"), "b.json": order("PO-2")})
    engine = await run_once(tmp_path, routes)
    delivered = sorted(json.loads(m.body)["po_number"] for m in recording.RECEIVED["erp"])
    assert delivered == ["PO-1", "PO-2"]
    stats = engine.stats.routes["r"]
    assert (stats.received, stats.delivered, stats.dead_lettered) == (2, 2, 0)
    assert sorted(p.name for p in (tmp_path / "data" / "inbox" / "done").iterdir()) == ["a.json", "b.json"]
    first = recording.RECEIVED["erp"][0]
    assert json.loads(first.body)["lines"][0]["quantity"] == "2"
    assert len(first.correlation_id) == 32


async def test_malformed_payload_is_dead_lettered_with_position_and_the_next_flows(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  map with "Order in"
  to recording channel "erp"
  dead letter to store
end
""")
    bad = b'{"po": "PO-9",\n  "items": [\n'
    drop(tmp_path, {"a-bad.json": bad, "b-good.json": order("PO-2")})
    engine = await run_once(tmp_path, routes)
    assert [json.loads(m.body)["po_number"] for m in recording.RECEIVED["erp"]] == ["PO-2"]
    [entry] = await dead_letters(tmp_path)
    assert entry.payload == bad
    assert entry.step == "read json" and entry.step_path == "0"
    assert entry.code == "D103"
    assert entry.error["position"]["line"] == 3
    assert entry.route == "r" and len(entry.correlation_id) == 32
    assert entry.attempts[0]["attempt"] == 1 and entry.attempts[0]["error"]["code"] == "D103"
    assert engine.stats.routes["r"].dead_lettered == 1
    assert (tmp_path / "data" / "inbox" / "failed" / "a-bad.json").read_bytes() == bad


async def test_map_failure_names_the_map_line(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  map with "Order in"
  to recording channel "erp"
  dead letter to store
end
""")
    drop(tmp_path, {"a.json": order("PO-1", qty="two")})
    await run_once(tmp_path, routes)
    [entry] = await dead_letters(tmp_path)
    assert entry.step == 'map with "Order in"'
    assert entry.code == "M001"
    quantity_line = next(i for i, line in enumerate((routes / "test.route").read_text().splitlines(), 1)
                         if "quantity = decimal(qty)" in line)
    assert entry.error["map_line"].endswith(f"test.route:{quantity_line}:5")
    assert "two" in entry.error["message"]


async def test_validation_failure_is_dead_lettered_with_the_field(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  map with "Order in"
  to recording channel "erp"
  dead letter to store
end
""")
    drop(tmp_path, {"a.json": order("PO-1", qty="-1")})
    await run_once(tmp_path, routes)
    [entry] = await dead_letters(tmp_path)
    assert entry.code == "V001"
    assert any(p["path"].startswith("lines.0.quantity") for p in entry.error["problems"])


def test_exponential_backoff_schedule_without_jitter() -> None:
    plan = RetryPlan(retries=5, backoff="exponential", initial=2.0, maximum=20.0, jitter=False)
    assert [plan.delay(n) for n in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 20.0]
    assert plan.delay(1, retry_after=30.0) == 30.0
    fixed = RetryPlan(retries=2, backoff="fixed", initial=3.0, maximum=3.0, jitter=False)
    assert [fixed.delay(n) for n in (1, 2)] == [3.0, 3.0]


def test_full_jitter_stays_within_the_exponential_bound() -> None:
    plan = RetryPlan(retries=4, backoff="exponential", initial=1.0, maximum=5.0, jitter=True)
    rng = random.Random(1)
    for attempt, bound in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0)):
        waits = [plan.delay(attempt, rng=rng) for _ in range(200)]
        assert all(0 <= w <= bound for w in waits)
        assert max(waits) > bound * 0.8  # the whole range is used, not a fixed point


async def test_transient_failures_are_retried_on_schedule_then_delivered(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  to recording channel "erp"
  retry 4 times backoff exponential from 1s up to 4s
  dead letter to store
end
""")
    recording.FAILURES["erp"] = [TransientError("busy", kind=TransientKind.UNAVAILABLE) for _ in range(3)]
    drop(tmp_path, {"a.json": order("PO-1")})
    clock = ManualClock()
    engine = await run_once(tmp_path, routes, clock)
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert len(recording.RECEIVED["erp"]) == 1
    assert recording.RECEIVED["erp"][0].attempt == 4
    assert engine.stats.routes["r"].retried == 3


async def test_exhausted_retries_are_dead_lettered_with_every_attempt(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  to recording channel "erp"
  retry 2 times backoff fixed 5s
  dead letter to store
end
""")
    recording.FAILURES["erp"] = [TransientError(f"timeout {n}", kind=TransientKind.TIMEOUT) for n in range(3)]
    drop(tmp_path, {"a.json": order("PO-1")})
    clock = ManualClock(start=1000.0)
    await run_once(tmp_path, routes, clock)
    assert clock.sleeps == [5.0, 5.0]
    [entry] = await dead_letters(tmp_path)
    assert [a["attempt"] for a in entry.attempts] == [1, 2, 3]
    assert [a["at"] for a in entry.attempts] == [1000.0, 1005.0, 1010.0]
    assert entry.error["message"] == "timeout 2" and entry.error["kind"] == "timeout"
    assert entry.step == 'to recording channel "erp"'
    assert "RECEIVED" not in recording.RECEIVED


async def test_retry_on_limits_which_kinds_are_retried_and_retry_after_is_a_floor(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  to recording channel "erp"
  retry 3 times backoff exponential from 1s up to 1m
  retry on throttled
  dead letter to store
end
""")
    recording.FAILURES["erp"] = [
        TransientError("slow down", kind=TransientKind.THROTTLED, retry_after=30.0),
        TransientError("refused", kind=TransientKind.CONNECTION),
    ]
    drop(tmp_path, {"a.json": order("PO-1")})
    clock = ManualClock()
    await run_once(tmp_path, routes, clock)
    assert clock.sleeps == [30.0]
    [entry] = await dead_letters(tmp_path)
    assert entry.error["kind"] == "connection" and len(entry.attempts) == 2


async def test_permanent_sink_error_is_not_retried(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  to recording channel "erp"
  retry 3 times backoff fixed 1s
  dead letter to store
end
""")
    recording.FAILURES["erp"] = [PermanentError("422 unprocessable", code="H422")]
    drop(tmp_path, {"a.json": order("PO-1")})
    clock = ManualClock()
    await run_once(tmp_path, routes, clock)
    assert clock.sleeps == []
    [entry] = await dead_letters(tmp_path)
    assert entry.code == "H422"


async def test_duplicates_are_skipped_counted_and_remembered_across_runs(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  map with "Order in"
  skip duplicates by po_number for 1 day
  to recording channel "erp"
  dead letter to store
end
""")
    drop(tmp_path, {"a.json": order("PO-1"), "b.json": order("PO-1"), "c.json": order("PO-2")})
    clock = ManualClock()
    engine = await run_once(tmp_path, routes, clock)
    assert sorted(json.loads(m.body)["po_number"] for m in recording.RECEIVED["erp"]) == ["PO-1", "PO-2"]
    assert engine.stats.routes["r"].duplicates == 1
    drop(tmp_path, {"d.json": order("PO-1")})
    engine = await run_once(tmp_path, routes, clock)
    assert engine.stats.routes["r"].duplicates == 1
    assert len(recording.RECEIVED["erp"]) == 2
    clock.advance(86_401)
    drop(tmp_path, {"e.json": order("PO-1")})
    engine = await run_once(tmp_path, routes, clock)
    assert engine.stats.routes["r"].delivered == 1
    assert len(recording.RECEIVED["erp"]) == 3


async def test_choice_routes_by_field_and_unmatched_messages_are_dead_lettered(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  map with "Order in"
  when ship_from = "DAL"
    to recording channel "dallas"
  when ship_from in ("RNO", "SPK")
    to recording channel "reno"
  end
  dead letter to store
end
""")
    drop(tmp_path, {"a.json": order("PO-1", "DAL"), "b.json": order("PO-2", "SPK"), "c.json": order("PO-3", "NYC")})
    await run_once(tmp_path, routes)
    assert [json.loads(m.body)["po_number"] for m in recording.RECEIVED["dallas"]] == ["PO-1"]
    assert [json.loads(m.body)["po_number"] for m in recording.RECEIVED["reno"]] == ["PO-2"]
    [entry] = await dead_letters(tmp_path)
    assert entry.code == "R001" and entry.business_key is None


async def test_reject_dead_letters_with_its_reason_and_the_source_message_is_acknowledged(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  map with "Order in"
  when ship_from = "DAL"
    to recording channel "dallas"
  otherwise
    reject "no warehouse takes this order"
  end
  dead letter to store
end
""")
    drop(tmp_path, {"a.json": order("PO-1", "DAL"), "b.json": order("PO-2", "NYC")})
    engine = await run_once(tmp_path, routes)
    assert [json.loads(m.body)["po_number"] for m in recording.RECEIVED["dallas"]] == ["PO-1"]
    [entry] = await dead_letters(tmp_path)
    assert (entry.code, entry.error["message"], entry.step) == ("R007", "no warehouse takes this order", "reject")
    assert entry.payload == order("PO-2", "NYC")  # as it came, for a person to look at and replay
    stats = engine.stats.routes["r"]
    assert (stats.delivered, stats.dead_lettered, stats.acked) == (1, 1, 2)

    # A rule for the order's warehouse is added; a plain replay (not --from-start) takes the new way.
    text = (routes / "test.route").read_text()
    (routes / "test.route").write_text(text.replace('  otherwise\n', '  when ship_from = "NYC"\n'
                                                    '    to recording channel "new york"\n  otherwise\n'))
    result = lint([routes])
    assert result.plan is not None and not result.errors
    async with embedded_stores(tmp_path / "data") as stores:
        runner = RouteRunner(result.plan.routes["r"], Services(stores=stores, data_dir=tmp_path / "data"),
                             RouteStats())
        async with AsyncExitStack() as stack:
            await runner.open_sinks(stack)
            assert await runner.replay(entry) is Outcome.DELIVERED
    [replayed] = recording.RECEIVED["new york"]
    assert json.loads(replayed.body)["po_number"] == "PO-2"


async def test_split_dead_letters_only_the_bad_element(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  for each orders
  map with "Order in"
  to recording channel "erp"
  dead letter to store
end
""")
    batch = {"orders": [json.loads(order("PO-1")), json.loads(order("PO-2", qty="x")), json.loads(order("PO-3"))]}
    drop(tmp_path, {"batch.json": json.dumps(batch).encode()})
    engine = await run_once(tmp_path, routes)
    assert sorted(json.loads(m.body)["po_number"] for m in recording.RECEIVED["erp"]) == ["PO-1", "PO-3"]
    [entry] = await dead_letters(tmp_path)
    assert entry.step_path == "2" and entry.meta["split_index"] == 1
    assert json.loads(entry.stage_payload)["po"] == "PO-2"
    assert engine.stats.routes["r"].delivered == 2
    assert (tmp_path / "data" / "inbox" / "failed" / "batch.json").exists()
    ids = {m.message_id for m in recording.RECEIVED["erp"]}
    assert len(ids) == 2


async def test_fan_out_failure_is_replayed_to_the_failed_branch_only(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  map with "Order in"
  send to all
    to recording channel "store"
    branch "marketplace"
      to recording channel "market"
    end
  end
  dead letter to store
end
""")
    recording.FAILURES["market"] = [PermanentError("market down for maintenance")]
    drop(tmp_path, {"a.json": order("PO-1")})
    await run_once(tmp_path, routes)
    assert len(recording.RECEIVED["store"]) == 1 and "market" not in recording.RECEIVED
    [entry] = await dead_letters(tmp_path)
    assert entry.step_path == "2/branch1/0"
    original_correlation = recording.RECEIVED["store"][0].correlation_id
    assert entry.correlation_id == original_correlation

    result = lint([routes])
    assert result.plan is not None
    async with embedded_stores(tmp_path / "data") as stores:
        runner = RouteRunner(result.plan.routes["r"], Services(stores=stores, data_dir=tmp_path / "data"),
                             RouteStats())
        async with AsyncExitStack() as stack:
            await runner.open_sinks(stack)
            outcome = await runner.replay(entry)
    assert outcome is Outcome.DELIVERED
    assert len(recording.RECEIVED["store"]) == 1
    [replayed] = recording.RECEIVED["market"]
    assert replayed.correlation_id == original_correlation
    assert json.loads(replayed.body)["po_number"] == "PO-1"


async def test_replay_keeps_correlation_and_idempotency_key_after_the_cause_is_fixed(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  map with "Order in"
  skip duplicates by po_number for 30 days
  to recording channel "erp"
  dead letter to store
end
""")
    recording.FAILURES["erp"] = [PermanentError("ERP rejected the customer", code="H400")]
    drop(tmp_path, {"a.json": order("PO-7")})
    await run_once(tmp_path, routes)
    [entry] = await dead_letters(tmp_path)
    assert entry.idempotency_key == "PO-7"
    args = ["dlq", "replay", entry.id, "--routes", str(routes), "--data", str(tmp_path / "data")]
    code = await anyio.to_thread.run_sync(cli_main, args)
    assert code == 0
    [delivered] = recording.RECEIVED["erp"]
    assert delivered.correlation_id == entry.correlation_id
    assert delivered.idempotency_key == "PO-7"
    async with embedded_stores(tmp_path / "data") as stores:
        stored = await stores.dead_letters.get(entry.id)
        assert stored is not None and stored.replayed_at is not None
        assert await stores.idempotency.seen("r#2", "PO-7", stored.replayed_at)


async def test_correlation_id_from_incoming_headers_travels_to_the_sink(tmp_path: Path) -> None:
    routes = project(tmp_path, """
connection "q" is queue
  database "queues.db"
end

route "r"
  from queue "q" queue "in"
  read json
  to recording channel "erp"
  dead letter to store
end
""")
    data = tmp_path / "data"
    data.mkdir()
    async with QueueDatabase(data / "queues.db") as queue:
        await queue.enqueue("in", "m-1", order("PO-1"), {"X-Correlation-ID": "corr-abc"}, now=0.0, dedupe_window=60.0)
    await run_once(tmp_path, routes)
    [message] = recording.RECEIVED["erp"]
    assert message.correlation_id == "corr-abc"
    assert message.headers["X-Correlation-ID"] == "corr-abc"


async def test_queue_and_file_sinks_write_each_order_once_when_redelivered(tmp_path: Path) -> None:
    routes = project(tmp_path, """
connection "q" is queue
  database "queues.db"
end

connection "outbox" is file
  folder "outbox"
end

route "r"
  from file "inbox"
  read json
  map with "Order in"
  to queue "q" queue "orders"
  to file "outbox"
    file name "{{ po_number }}.json"
  dead letter to store
end
""")
    drop(tmp_path, {"a.json": order("PO-1")})
    await run_once(tmp_path, routes)
    # the same file arrives again unchanged, as after a crash before the move to done
    done = tmp_path / "data" / "inbox" / "done" / "a.json"
    target = tmp_path / "data" / "inbox" / "a.json"
    done.rename(target)
    await run_once(tmp_path, routes)
    async with QueueDatabase(tmp_path / "data" / "queues.db") as queue:
        assert await queue.depth("orders") == 1
    written = json.loads((tmp_path / "data" / "outbox" / "PO-1.json").read_text())
    assert written["po_number"] == "PO-1" and Decimal(written["lines"][0]["quantity"]) == 2


async def test_filter_acks_and_counts_what_it_drops(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  keep only when warehouse != "NYC"
  validate as Order
  to recording channel "erp"
  dead letter to store
end
""")
    drop(tmp_path, {"a.json": order("PO-1", "NYC"), "b.json": order("PO-2")})
    engine = await run_once(tmp_path, routes)
    stats = engine.stats.routes["r"]
    assert (stats.filtered, stats.delivered, stats.dead_lettered) == (1, 0, 1)
    [entry] = await dead_letters(tmp_path)
    assert entry.step == "validate as Order" and entry.code == "V001"
    assert sorted(p.name for p in (tmp_path / "data" / "inbox" / "done").iterdir()) == ["a.json"]


async def test_dead_letters_are_also_published_to_a_dead_letter_queue(tmp_path: Path) -> None:
    routes = project(tmp_path, """
connection "q" is queue
  database "queues.db"
end

route "r"
  from file "inbox"
  read json
  map with "Order in"
  to recording channel "erp"
  dead letter to queue "q" queue "erp.dlq"
end
""")
    drop(tmp_path, {"a.json": order("PO-1", qty="oops")})
    await run_once(tmp_path, routes)
    [entry] = await dead_letters(tmp_path)
    async with QueueDatabase(tmp_path / "data" / "queues.db") as queue:
        [published] = await queue.peek("erp.dlq", 10)
    assert published.body == order("PO-1", qty="oops")
    assert published.headers["X-Dead-Letter-ID"] == entry.id
    assert published.headers["X-Error-Code"] == "M001"
    assert published.correlation_id == entry.correlation_id


async def test_process_n_at_a_time_bounds_concurrent_deliveries(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
  read json
  to recording channel "erp"
  process 2 at a time
  dead letter to store
end
""")
    result = lint([routes])
    assert result.plan is not None
    assert result.plan.routes["r"].concurrency == 2
    recording.DELAY["erp"] = 0.02
    drop(tmp_path, {f"{n}.json": order(f"PO-{n}") for n in range(6)})
    engine = await run_once(tmp_path, routes)
    assert engine.stats.routes["r"].delivered == 6
    assert recording.CONCURRENCY["max"] == 2


async def test_a_route_that_cannot_start_stops_alone(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "broken"
  from file "inbox"
    folder "no-such-folder"
    create folders no
  read json
  to recording channel "never"
  dead letter to store
end

route "r"
  from file "inbox"
  read json
  to recording channel "erp"
  dead letter to store
end
""")
    drop(tmp_path, {"a.json": order("PO-1")})
    engine = await run_once(tmp_path, routes)
    failure = engine.runners["broken"].failure
    assert failure is not None and "no-such-folder" in str(failure)
    assert engine.runners["r"].failure is None
    assert len(recording.RECEIVED["erp"]) == 1


async def test_a_streamed_split_reads_elements_no_faster_than_they_are_processed(tmp_path: Path) -> None:
    routes = project(tmp_path, """
route "r"
  from file "inbox"
    files "*.xml"
  read xml "Items"
    split on "Item"
  for each Item
  to recording channel "items"
    format xml
  process 2 at a time
  dead letter to store
end
""")
    items = "".join(f"<Item><sku>S-{n}</sku></Item>" for n in range(40))
    drop(tmp_path, {"items.xml": f"<Items>{items}</Items>".encode()})
    recording.DELAY["items"] = 0.01
    engine = await run_once(tmp_path, routes)
    assert engine.stats.routes["r"].delivered == 40
    assert recording.CONCURRENCY["max"] == 2
    bodies = [m.body for m in recording.RECEIVED["items"]]
    assert b"<sku>S-0</sku>" in bodies[0] and len(set(bodies)) == 40
