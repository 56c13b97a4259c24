"""Lineage: `track by` keys in the journal, `trace` by key, correlation id and dead-letter id, and the
journal's retention (events and keys pruned, on a ManualClock)."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import anyio
import pytest

from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import STORE_FILE, Engine, embedded_stores
from crossdock.engine.services import Services
from crossdock.engine.stores.base import JournalEvent
from crossdock.engine.stores.embedded import open_sqlite_stores
from crossdock.ops.lineage import FOUND_BY_CORRELATION, FOUND_BY_DEAD_LETTER, FOUND_BY_KEY, trace

pytestmark = pytest.mark.anyio

DAY = 86400.0
SAMPLE = Path(__file__).resolve().parents[2] / "examples/x12-850/routes/fixtures/shipment-SHP-20240122-7.json"

ROUTES = '''\
route "shipments"
  from file
    folder "inbox"
    files "*.json"
  read json
  track by shipment_id, po_numbers, decimal(service), estimated_delivery_date
  validate as Shipment
  to file
    folder "out"
  dead letter to store
end
'''


def shipment(shipment_id: str, *po_numbers: str) -> dict:
    """The X12 example's one-PO shipment (no estimated delivery date, service "LTL") with other numbers."""
    document = json.loads(SAMPLE.read_text())
    assert "estimated_delivery_date" not in document and document["service"] == "LTL"
    return {**document, "shipment_id": shipment_id, "po_numbers": list(po_numbers)}


async def run(tmp_path: Path, clock: ManualClock, documents: dict[str, dict], **engine_options: float) -> Engine:
    routes = tmp_path / "routes"
    routes.mkdir(exist_ok=True)
    (routes / "shipments.route").write_text(ROUTES)
    result = lint([routes])
    assert result.plan is not None and not result.errors, [str(d) for d in result.errors]
    data = tmp_path / "data"
    (data / "inbox").mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        (data / "inbox" / name).write_text(json.dumps(document))
    async with embedded_stores(data) as stores:
        engine = Engine(result.plan, Services(stores=stores, data_dir=data, clock=clock), **engine_options)
        await engine.run(once=True, stop=anyio.Event())
    return engine


def keys_table(tmp_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "data" / STORE_FILE) as conn:
        return sorted(conn.execute("SELECT key, route FROM journal_keys").fetchall())


async def test_track_by_records_every_key_a_list_gives_and_skips_the_ones_it_cannot_read(tmp_path: Path) -> None:
    engine = await run(tmp_path, ManualClock(), {"s1.json": shipment("SHP-1", "PO-1", "PO-2")})
    assert engine.stats.routes["shipments"].delivered == 1  # the unreadable key did not stop it
    # the estimated delivery date is missing: no key; decimal("LTL") fails: logged, left out
    assert keys_table(tmp_path) == [("PO-1", "shipments"), ("PO-2", "shipments"), ("SHP-1", "shipments")]
    async with embedded_stores(tmp_path / "data") as stores:
        [received, tracked, delivered, acked] = await stores.journal.events(route="shipments")
    assert (received.event, tracked.event, delivered.event, acked.event) == ("received", "tracked", "delivered",
                                                                             "acked")
    assert tracked.detail == {"keys": ["SHP-1", "PO-1", "PO-2"]}
    assert received.business_key is None and delivered.business_key == "SHP-1"  # the first key


async def test_trace_finds_a_message_by_each_key_its_correlation_id_and_its_dead_letter(tmp_path: Path) -> None:
    broken = shipment("SHP-3", "PO-2")
    del broken["packages"]
    await run(tmp_path, ManualClock(), {"s1.json": shipment("SHP-1", "PO-1", "PO-2"),
                                        "s2.json": shipment("SHP-2", "PO-9"), "s3.json": broken})
    async with embedded_stores(tmp_path / "data") as stores:
        by_po = await trace(stores, "PO-2")
        assert by_po.found_by == [FOUND_BY_KEY]
        assert [(t.keys, t.outcome) for t in by_po.trails] == [
            (["PO-1", "PO-2", "SHP-1"], "delivered"), (["PO-2", "SHP-3"], "dead-lettered")]
        assert [t.correlation_id for t in (await trace(stores, "PO-1")).trails] == [by_po.trails[0].correlation_id]
        assert (await trace(stores, "po-2")).trails == []  # keys match exactly

        by_id = await trace(stores, by_po.trails[0].correlation_id)
        assert by_id.found_by == [FOUND_BY_CORRELATION]
        assert [t.correlation_id for t in by_id.trails] == [t.correlation_id for t in by_po.trails]

        [entry] = await stores.dead_letters.list()
        by_entry = await trace(stores, entry.id)
        assert by_entry.found_by == [FOUND_BY_DEAD_LETTER]
        assert by_entry.trails[-1].dead_letters == [entry.id] and entry.business_key == "SHP-3"
        assert {t.correlation_id for t in by_entry.trails} == {t.correlation_id for t in by_po.trails}

        untracked = await trace(stores, "SHP-2")
        assert [t.keys for t in untracked.trails] == [["PO-9", "SHP-2"]]


async def test_retention_prunes_old_events_and_their_keys_when_the_engine_starts(tmp_path: Path) -> None:
    clock = ManualClock()
    await run(tmp_path, clock, {"old.json": shipment("SHP-OLD", "PO-OLD")}, journal_retention=30 * DAY)
    clock.advance(29 * DAY)
    await run(tmp_path, clock, {"recent.json": shipment("SHP-NEW", "PO-NEW")}, journal_retention=30 * DAY)
    assert [k for k, _ in keys_table(tmp_path)] == ["PO-NEW", "PO-OLD", "SHP-NEW", "SHP-OLD"]

    clock.advance(2 * DAY)  # the first shipment is 31 days old, the second 2 days
    await run(tmp_path, clock, {}, journal_retention=30 * DAY)
    assert [k for k, _ in keys_table(tmp_path)] == ["PO-NEW", "SHP-NEW"]
    async with embedded_stores(tmp_path / "data") as stores:
        assert not (await trace(stores, "PO-OLD")).found
        assert [t.outcome for t in (await trace(stores, "PO-NEW")).trails] == ["delivered"]
        assert {e.business_key for e in await stores.journal.events()} == {None, "SHP-NEW"}


async def test_a_key_stays_while_its_message_has_events_left(tmp_path: Path) -> None:
    async with await open_sqlite_stores(tmp_path / STORE_FILE) as stores:
        journal = stores.journal
        for at in (0.0, 40 * DAY):  # received long ago, replayed recently
            await journal.record(JournalEvent(at=at, route="r", correlation_id="c1", message_id="m", event="x"))
        await journal.record_keys(at=0.0, route="r", correlation_id="c1", keys=["PO-1", "PO-1"])
        assert await journal.prune(before=30 * DAY) == 1
        assert await journal.find_key("PO-1") == ["c1"]
        assert await journal.prune(before=50 * DAY) == 1
        assert await journal.find_key("PO-1") == []


async def test_a_store_written_before_journal_keys_existed_gets_the_table(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    async with await open_sqlite_stores(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE journal_keys")
        conn.execute("DELETE FROM schema_version WHERE component = 'journal_keys'")
    async with await open_sqlite_stores(path) as stores:
        await stores.journal.record_keys(at=1.0, route="r", correlation_id="c1", keys=["K"])
        assert await stores.journal.find_key("K") == ["c1"]


def test_track_by_is_checked_like_every_expression(tmp_path: Path) -> None:
    (tmp_path / "r.route").write_text(textwrap.dedent('''\
        route "r"
          from file
            folder "in"
          track by po_number
          read json
          track by lenght(po_number), "all"
          to file
            folder "out"
          dead letter to store
        end
        '''))
    found = [(d.code, d.span.line, d.span.column) for d in lint([tmp_path]).diagnostics]
    assert found == [("RTE006", 4, 3), ("NAME009", 6, 12), ("RTE011", 6, 31)]
