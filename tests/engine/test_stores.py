"""The embedded SQLite stores: dead letters, idempotency keys and the journal."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crossdock.engine.errors import PermanentError, TransientError
from crossdock.engine.stores import DeadLetter, JournalEvent, Stores, open_sqlite_stores
from crossdock.engine.stores.journal import ROWS_PER_STATEMENT
from crossdock.engine.stores.sqlite import STORES_COMPONENT

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000.0
BINARY_PAYLOAD = b"ISA*00*\x00\xff\xfe binary \r\n~"


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    async with await open_sqlite_stores(tmp_path / "crossdock.db", journal_flush_every=1000) as opened:
        yield opened


def dead_letter(route: str = "orders", at: float = T0, code: str = "P000", **extra: object) -> DeadLetter:
    return DeadLetter(
        route=route,
        step='to queue "warehouse-queues"',
        step_path="3/when0/1",
        correlation_id="c0ffee",
        message_id="m-1",
        payload=BINARY_PAYLOAD,
        error={"type": "PermanentError", "code": code, "message": "no"},
        created_at=at,
        **extra,  # type: ignore[arg-type]
    )


def event(name: str, at: float, route: str = "orders", correlation_id: str = "c1",
          **extra: object) -> JournalEvent:
    return JournalEvent(at=at, route=route, correlation_id=correlation_id, message_id="m", event=name,
                        **extra)  # type: ignore[arg-type]


def rows_on_disk(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def events_on_disk(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT IFNULL(SUM(json_array_length(events)), 0) FROM journal_stories").fetchone()[0]


# -- dead letters ----------------------------------------------------------------------------------


async def test_dead_letter_round_trip_keeps_every_field_and_the_payload_bytes(tmp_path: Path) -> None:
    entry = dead_letter(
        idempotency_key="PO-1", business_key="PO-1", stage_payload=b'{"po": "PO-1"}\x00',
        headers={"X-Correlation-ID": "c0ffee"}, meta={"file_name": "a.x12", "split_index": 2},
        error_chain=[{"code": "P000"}, {"code": "X000", "message": "cause"}],
        attempts=[{"attempt": 1, "at": T0 - 5, "error": {"code": "T000"}}],
    )
    path = tmp_path / "crossdock.db"
    async with await open_sqlite_stores(path) as stores:
        assert await stores.dead_letters.put(entry) == entry.id
    # A fresh process sees the same entry: it was durable when put() returned.
    async with await open_sqlite_stores(path) as stores:
        stored = await stores.dead_letters.get(entry.id)
    assert stored == entry
    assert stored is not None and stored.payload == BINARY_PAYLOAD
    assert stored.code == "P000"


async def test_dead_letter_get_unknown_id_is_none(stores: Stores) -> None:
    assert await stores.dead_letters.get("nope") is None


async def test_dead_letter_list_is_newest_first_and_filters(stores: Stores) -> None:
    store = stores.dead_letters
    a = dead_letter("orders", T0, "P000")
    b = dead_letter("orders", T0 + 10, "V001")
    c = dead_letter("invoices", T0 + 20, "P000")
    for entry in (a, b, c):
        await store.put(entry)

    assert [e.id for e in await store.list()] == [c.id, b.id, a.id]
    assert [e.id for e in await store.list(route="orders")] == [b.id, a.id]
    assert [e.id for e in await store.list(code="P000")] == [c.id, a.id]
    assert [e.id for e in await store.list(since=T0 + 10)] == [c.id, b.id]
    assert [e.id for e in await store.list(until=T0 + 10)] == [a.id]
    assert [e.id for e in await store.list(limit=1, offset=1)] == [b.id]
    assert await store.count() == 3
    assert await store.count("orders") == 2
    assert await store.oldest_created_at() == T0


async def test_dead_letter_oldest_is_none_when_empty(stores: Stores) -> None:
    assert await stores.dead_letters.oldest_created_at() is None
    assert await stores.dead_letters.count() == 0


async def test_mark_replayed_records_time_and_counts(stores: Stores) -> None:
    entry = dead_letter()
    await stores.dead_letters.put(entry)
    await stores.dead_letters.mark_replayed(entry.id, T0 + 60)
    await stores.dead_letters.mark_replayed(entry.id, T0 + 120)
    stored = await stores.dead_letters.get(entry.id)
    assert stored is not None
    assert (stored.replayed_at, stored.replay_count) == (T0 + 120, 2)


async def test_delete_returns_how_many_existed(stores: Stores) -> None:
    kept, gone = dead_letter(), dead_letter()
    await stores.dead_letters.put(kept)
    await stores.dead_letters.put(gone)
    assert await stores.dead_letters.delete([gone.id, gone.id, "unknown"]) == 1
    assert [e.id for e in await stores.dead_letters.list()] == [kept.id]


async def test_purge_by_route_and_age(stores: Stores) -> None:
    old_orders, new_orders = dead_letter("orders", T0), dead_letter("orders", T0 + 100)
    old_invoices = dead_letter("invoices", T0)
    for entry in (old_orders, new_orders, old_invoices):
        await stores.dead_letters.put(entry)
    assert await stores.dead_letters.purge(route="orders", before=T0 + 50) == 1
    assert {e.id for e in await stores.dead_letters.list()} == {new_orders.id, old_invoices.id}
    assert await stores.dead_letters.purge() == 2
    assert await stores.dead_letters.count() == 0


async def test_values_json_cannot_hold_are_stored_as_text(stores: Stores) -> None:
    from decimal import Decimal

    entry = dead_letter(meta={"amount": Decimal("12.50")})
    await stores.dead_letters.put(entry)
    stored = await stores.dead_letters.get(entry.id)
    assert stored is not None and stored.meta == {"amount": "12.50"}


# -- idempotency -----------------------------------------------------------------------------------


async def test_idempotency_key_is_seen_until_it_expires(stores: Stores) -> None:
    keys = stores.idempotency
    assert not await keys.seen("orders", "PO-1", T0)
    await keys.record("orders", "PO-1", 60, T0)
    assert await keys.seen("orders", "PO-1", T0 + 59)
    assert not await keys.seen("orders", "PO-1", T0 + 60)
    assert not await keys.seen("invoices", "PO-1", T0)


async def test_idempotency_record_again_extends_and_never_shortens(stores: Stores) -> None:
    keys = stores.idempotency
    await keys.record("orders", "PO-1", 60, T0)
    await keys.record("orders", "PO-1", 60, T0 + 30)
    assert await keys.seen("orders", "PO-1", T0 + 80)
    await keys.record("orders", "PO-1", 1, T0 + 31)
    assert await keys.seen("orders", "PO-1", T0 + 80)


async def test_idempotency_expire_deletes_only_expired_keys(tmp_path: Path) -> None:
    path = tmp_path / "crossdock.db"
    async with await open_sqlite_stores(path) as stores:
        await stores.idempotency.record("orders", "old", 10, T0)
        await stores.idempotency.record("orders", "new", 100, T0)
        assert await stores.idempotency.expire(T0 + 50) == 1
        assert await stores.idempotency.seen("orders", "new", T0 + 50)
    assert rows_on_disk(path, "idempotency") == 1


# -- journal ---------------------------------------------------------------------------------------


async def test_journal_buffers_until_flush(tmp_path: Path) -> None:
    path = tmp_path / "crossdock.db"
    async with await open_sqlite_stores(path, journal_flush_every=1000) as stores:
        await stores.journal.record(event("received", T0))
        assert events_on_disk(path) == 0
        await stores.journal.flush()
        assert events_on_disk(path) == 1


async def test_journal_flushes_when_the_buffer_is_full(tmp_path: Path) -> None:
    path = tmp_path / "crossdock.db"
    async with await open_sqlite_stores(path, journal_flush_every=3) as stores:
        for n in range(4):
            await stores.journal.record(event("received", T0 + n))
        assert events_on_disk(path) == 3


async def test_journal_is_flushed_on_close(tmp_path: Path) -> None:
    path = tmp_path / "crossdock.db"
    stores = await open_sqlite_stores(path, journal_flush_every=1000)
    await stores.journal.record(event("received", T0))
    await stores.close()
    await stores.close()
    assert events_on_disk(path) == 1


async def test_journal_events_by_correlation_and_business_key_oldest_first(stores: Stores) -> None:
    journal = stores.journal
    await journal.record(event("delivered", T0 + 2, step="to rest", business_key="PO-1",
                               detail={"status": 201}))
    await journal.record(event("received", T0))
    await journal.record(event("received", T0 + 1, correlation_id="c2", business_key="PO-1"))
    await journal.record(event("received", T0 + 3, route="invoices", correlation_id="c3"))

    trail = await journal.events(correlation_id="c1")
    assert [(e.event, e.at) for e in trail] == [("received", T0), ("delivered", T0 + 2)]
    assert trail[1].detail == {"status": 201} and trail[1].step == "to rest"
    assert [e.correlation_id for e in await journal.events(business_key="PO-1")] == ["c2", "c1"]
    assert [e.correlation_id for e in await journal.events(route="invoices")] == ["c3"]
    assert len(await journal.events(limit=2)) == 2


async def test_journal_counts_per_route_and_event(stores: Stores) -> None:
    journal = stores.journal
    for name, at, route in [("received", T0, "orders"), ("received", T0 + 1, "orders"),
                            ("delivered", T0 + 2, "orders"), ("dead-lettered", T0 + 3, "invoices")]:
        await journal.record(event(name, at, route=route))
    assert await journal.counts() == {"orders": {"received": 2, "delivered": 1},
                                      "invoices": {"dead-lettered": 1}}
    assert await journal.counts(since=T0 + 1) == {"orders": {"received": 1, "delivered": 1},
                                                  "invoices": {"dead-lettered": 1}}


async def test_journal_prune_deletes_older_events(stores: Stores) -> None:
    for n in range(5):
        await stores.journal.record(event("received", T0 + n))
    assert await stores.journal.prune(T0 + 3) == 3
    assert [e.at for e in await stores.journal.events()] == [T0 + 3, T0 + 4]


async def test_journal_writes_a_row_per_message_and_keeps_the_recorded_order_of_one_instant(
        tmp_path: Path) -> None:
    path = tmp_path / "crossdock.db"
    async with await open_sqlite_stores(path, journal_flush_every=1000) as stores:
        for name, correlation_id in [("received", "a"), ("received", "b"), ("delivered", "a"), ("acked", "b"),
                                     ("acked", "a")]:
            await stores.journal.record(event(name, T0, correlation_id=correlation_id))
        await stores.journal.flush()
        assert rows_on_disk(path, "journal_stories") == 2
        await stores.journal.record(event("replayed", T0, correlation_id="a"))  # a later flush, same instant
        trail = [(e.correlation_id, e.event) for e in await stores.journal.events()]
    assert trail == [("a", "received"), ("b", "received"), ("a", "delivered"), ("b", "acked"), ("a", "acked"),
                     ("a", "replayed")]
    assert rows_on_disk(path, "journal_stories") == 3


async def test_journal_flush_of_more_messages_than_one_statement_holds_writes_them_all_in_order(
        tmp_path: Path) -> None:
    count = 2 * ROWS_PER_STATEMENT + 3  # two full statements and a shorter one, for stories and keys
    path = tmp_path / "crossdock.db"
    async with await open_sqlite_stores(path, journal_flush_every=10_000) as stores:
        for n in range(count):
            await stores.journal.record(event("received", T0 + n, correlation_id=f"c{n}"))
            await stores.journal.record_keys(at=T0 + n, route="orders", correlation_id=f"c{n}", keys=[f"PO-{n}"])
        await stores.journal.flush()
        assert rows_on_disk(path, "journal_stories") == count
        assert rows_on_disk(path, "journal_keys") == count
        trail = await stores.journal.events(limit=count)
        assert await stores.journal.find_key(f"PO-{count - 1}") == [f"c{count - 1}"]
    assert [e.correlation_id for e in trail] == [f"c{n}" for n in range(count)]


async def test_journal_prune_keeps_the_newer_events_of_a_message_that_spans_the_cut(stores: Stores) -> None:
    for n in range(3):
        await stores.journal.record(event("retried", T0 + n))
    await stores.journal.record(event("received", T0, correlation_id="c2"))
    assert await stores.journal.prune(T0 + 2) == 3
    assert [(e.correlation_id, e.at) for e in await stores.journal.events()] == [("c1", T0 + 2)]


async def test_a_store_with_the_older_journal_layout_has_its_events_moved_once(tmp_path: Path) -> None:
    path = tmp_path / "crossdock.db"
    async with await open_sqlite_stores(path):
        pass
    with sqlite3.connect(path) as conn:  # as a version before journal_stories left it
        conn.execute("DROP TABLE journal_stories")
        conn.execute("DELETE FROM schema_version WHERE component = 'journal_stories'")
        conn.executemany(
            "INSERT INTO journal (at, route, correlation_id, message_id, event, step, business_key, detail) "
            "VALUES (?, 'orders', 'c1', 'm', ?, ?, ?, ?)",
            [(T0, "received", None, None, "{}"), (T0, "delivered", "to rest", "PO-1", '{"status": 201}')])
    for _ in range(2):
        async with await open_sqlite_stores(path) as stores:
            trail = await stores.journal.events(correlation_id="c1")
            assert [(e.event, e.step, e.business_key, e.detail) for e in trail] == [
                ("received", None, None, {}), ("delivered", "to rest", "PO-1", {"status": 201})]
            assert await stores.journal.find_key("PO-1") == ["c1"]
    assert rows_on_disk(path, "journal") == 0


# -- the database file -----------------------------------------------------------------------------


async def test_database_uses_wal_and_records_its_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "crossdock.db"
    async with await open_sqlite_stores(path):
        pass
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version WHERE component = ?",
                            (STORES_COMPONENT,)).fetchone()[0] == 1


async def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "crossdock.db"
    async with await open_sqlite_stores(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(PermanentError) as caught:
        await open_sqlite_stores(path)
    assert caught.value.code == "SQL003"


async def test_a_file_that_is_not_a_database_is_a_permanent_error(tmp_path: Path) -> None:
    path = tmp_path / "crossdock.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(PermanentError) as caught:
        await open_sqlite_stores(path)
    assert caught.value.code == "SQL002"


async def test_a_locked_database_is_a_transient_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import crossdock.engine.stores.sqlite as sqlite_module

    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_SECONDS", 0.0)
    path = tmp_path / "crossdock.db"
    async with await open_sqlite_stores(path) as stores:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(TransientError) as caught:
                await stores.dead_letters.put(dead_letter())
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert caught.value.code == "SQL001"
        assert await stores.dead_letters.count() == 0
