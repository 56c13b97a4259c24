"""The embedded `queue` connector: durable enqueue, dedupe by message id, leases and crash recovery."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from crossdock.connectors import queue as queue_connector
from crossdock.connectors.base import ConnectorContext, load_connector
from crossdock.connectors.queue import SPEC, QueueDatabase, QueueSink, QueueSource
from crossdock.dsl.options import Role
from crossdock.engine.clock import ManualClock
from crossdock.engine.errors import PermanentError
from crossdock.engine.message import CORRELATION_HEADER, Inbound, Message, Outcome

pytestmark = pytest.mark.anyio

LEASE = 60.0


def context(tmp_path: Path, clock: ManualClock) -> ConnectorContext:
    return ConnectorContext(owner="test", data_dir=tmp_path / "data", clock=clock)


def options(**overrides: Any) -> dict[str, Any]:
    values = {spec.key: spec.default for spec in SPEC.options}
    values.update(queue="dal-orders", lease=LEASE)
    values.update(overrides)
    return values


def sink(tmp_path: Path, clock: ManualClock, **overrides: Any) -> QueueSink:
    return queue_connector.open_sink(options(**overrides), context(tmp_path, clock))


def source(tmp_path: Path, clock: ManualClock, **overrides: Any) -> QueueSource:
    return queue_connector.open_source(options(**overrides), context(tmp_path, clock))


def message(message_id: str = "m-1", body: Any = b'{"po": "PO-1"}') -> Message:
    return Message(body=body, route="orders", message_id=message_id, correlation_id="corr-1",
                   headers={"x-correlation-id": "stale", "X-Source": "erp"})


async def take(src: QueueSource) -> list[Inbound]:
    return [inbound async for inbound in src.receive(once=True)]


async def depth(tmp_path: Path, queue: str = "dal-orders") -> int:
    async with QueueDatabase(tmp_path / "data" / "queues.db") as db:
        return await db.depth(queue)


# -- the spec --------------------------------------------------------------------------------------


def test_spec_is_registered_and_promises_dedupe() -> None:
    assert load_connector("queue").SPEC is SPEC
    assert SPEC.capabilities.dedupes_by_message_id
    by_key = {spec.key: spec for spec in SPEC.options}
    assert by_key["queue"].required
    assert by_key["lease"].roles == frozenset({Role.SOURCE})
    assert by_key["dedupe_window"].roles == frozenset({Role.SINK})


# -- sink ------------------------------------------------------------------------------------------


async def test_sink_stores_body_and_headers_with_the_correlation_id(tmp_path: Path) -> None:
    clock = ManualClock()
    async with sink(tmp_path, clock) as out:
        await out.send(message(body=b"\x00\xffbinary"))
    async with QueueDatabase(tmp_path / "data" / "queues.db") as db:
        [stored] = await db.peek("dal-orders")
    assert stored.body == b"\x00\xffbinary"
    assert stored.headers == {"X-Source": "erp", CORRELATION_HEADER: "corr-1"}
    assert stored.correlation_id == "corr-1"
    assert (stored.message_id, stored.enqueued_at, stored.lease_until) == ("m-1", clock.now(), None)


async def test_sink_is_on_disk_when_send_returns(tmp_path: Path) -> None:
    async with sink(tmp_path, ManualClock()) as out:
        await out.send(message())
        with sqlite3.connect(tmp_path / "data" / "queues.db") as other_connection:
            count = other_connection.execute("SELECT COUNT(*) FROM queue_messages").fetchone()[0]
    assert count == 1


async def test_sink_drops_a_message_id_it_already_holds(tmp_path: Path) -> None:
    async with sink(tmp_path, ManualClock()) as out:
        await out.send(message("m-1", b"first"))
        await out.send(message("m-1", b"second"))
        await out.send(message("m-2", b"other"))
    async with QueueDatabase(tmp_path / "data" / "queues.db") as db:
        assert [(m.message_id, m.body) for m in await db.peek("dal-orders")] == [("m-1", b"first"),
                                                                                 ("m-2", b"other")]


async def test_sink_drops_a_redelivery_already_consumed_within_the_window(tmp_path: Path) -> None:
    clock = ManualClock()
    async with sink(tmp_path, clock, dedupe_window=3600.0) as out, source(tmp_path, clock) as src:
        await out.send(message("m-1"))
        [inbound] = await take(src)
        await inbound.ack(Outcome.DELIVERED)
        clock.advance(3599)
        await out.send(message("m-1"))
        assert await depth(tmp_path) == 0
        clock.advance(1)
        await out.send(message("m-1"))
        assert await depth(tmp_path) == 1


async def test_same_message_id_in_two_queues_is_two_messages(tmp_path: Path) -> None:
    clock = ManualClock()
    async with sink(tmp_path, clock, queue="dal") as dal, sink(tmp_path, clock, queue="atl") as atl:
        await dal.send(message("m-1"))
        await atl.send(message("m-1"))
        await atl.send(message("m-2"))
    async with QueueDatabase(tmp_path / "data" / "queues.db") as db:
        assert await db.queues() == {"atl": 2, "dal": 1}


async def test_sink_refuses_a_body_that_is_not_bytes(tmp_path: Path) -> None:
    async with sink(tmp_path, ManualClock()) as out:
        with pytest.raises(PermanentError) as caught:
            await out.send(message(body={"po": "PO-1"}))
    assert caught.value.code == "QUE001"


async def test_database_option_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "q.db"
    async with sink(tmp_path, ManualClock(), database=str(path)) as out:
        await out.send(message())
    async with QueueDatabase(path) as db:
        assert await db.depth("dal-orders") == 1
    assert not (tmp_path / "data").exists()


# -- source ----------------------------------------------------------------------------------------


async def test_round_trip_keeps_id_body_and_correlation(tmp_path: Path) -> None:
    clock = ManualClock()
    async with sink(tmp_path, clock) as out, source(tmp_path, clock) as src:
        await out.send(message("m-1", b"payload"))
        [inbound] = await take(src)
        assert (inbound.message_id, inbound.body) == ("m-1", b"payload")
        assert inbound.headers[CORRELATION_HEADER] == "corr-1"
        assert Message.from_inbound(inbound, "next-route").correlation_id == "corr-1"
        assert inbound.meta["deliveries"] == 1
        await inbound.ack(Outcome.DELIVERED)
    assert await depth(tmp_path) == 0


async def test_once_drains_every_visible_message_in_order_across_batches(tmp_path: Path) -> None:
    clock = ManualClock()
    async with sink(tmp_path, clock) as out, source(tmp_path, clock, batch=2) as src:
        for n in range(5):
            await out.send(message(f"m-{n}"))
        taken = await take(src)
    assert [i.message_id for i in taken] == [f"m-{n}" for n in range(5)]
    assert clock.sleeps == []


async def test_ack_of_a_dead_lettered_message_deletes_it(tmp_path: Path) -> None:
    clock = ManualClock()
    async with sink(tmp_path, clock) as out, source(tmp_path, clock) as src:
        await out.send(message())
        [inbound] = await take(src)
        await inbound.ack(Outcome.DEAD_LETTERED)
        clock.advance(LEASE * 10)
        assert await take(src) == []
    assert await depth(tmp_path) == 0


async def test_two_consumers_never_get_the_same_message(tmp_path: Path) -> None:
    clock = ManualClock()
    async with sink(tmp_path, clock) as out, source(tmp_path, clock) as one, source(tmp_path, clock) as two:
        await out.send(message("m-1"))
        await out.send(message("m-2"))
        first = await take(one)
        second = await take(two)
    assert [i.message_id for i in first] == ["m-1", "m-2"]
    assert second == []


async def test_release_makes_the_message_visible_at_once(tmp_path: Path) -> None:
    clock = ManualClock()
    async with sink(tmp_path, clock) as out, source(tmp_path, clock) as one, source(tmp_path, clock) as two:
        await out.send(message())
        [inbound] = await take(one)
        await inbound.release()
        [again] = await take(two)
    assert again.message_id == "m-1"
    assert again.meta["deliveries"] == 2


async def test_an_unacked_message_comes_back_after_its_lease_expires(tmp_path: Path) -> None:
    clock = ManualClock()
    async with sink(tmp_path, clock) as out:
        await out.send(message("m-1", b"order"))
    # A consumer takes the message and dies before acknowledging it.
    async with source(tmp_path, clock) as crashed:
        [lost] = await take(crashed)
    assert lost.message_id == "m-1"

    async with source(tmp_path, clock) as survivor:
        clock.advance(LEASE - 1)
        assert await take(survivor) == []
        clock.advance(1)
        [recovered] = await take(survivor)
        assert (recovered.message_id, recovered.body, recovered.meta["deliveries"]) == ("m-1", b"order", 2)
        await recovered.ack(Outcome.DELIVERED)
    assert await depth(tmp_path) == 0


async def test_a_held_message_keeps_its_lease_while_its_source_polls(tmp_path: Path) -> None:
    clock = ManualClock()
    holder, other = source(tmp_path, clock), source(tmp_path, clock)
    async with sink(tmp_path, clock) as out, holder, other:
        await out.send(message("m-1"))
        [held] = await take(holder)
        clock.advance(LEASE - 1)
        assert await take(holder) == []  # this poll renews the lease of m-1
        clock.advance(LEASE - 1)
        assert await take(other) == []
        clock.advance(1)
        [taken] = await take(other)
    assert taken.message_id == held.message_id


async def test_continuous_receive_waits_check_every_when_empty(tmp_path: Path) -> None:
    clock = ManualClock()
    async with sink(tmp_path, clock) as out, source(tmp_path, clock, check_every=5.0) as src:
        stream = src.receive(once=False)
        await out.send(message("m-1"))
        first = await anext(stream)
        await first.ack(Outcome.DELIVERED)
        await out.send(message("m-2"))
        second = await anext(stream)
        await stream.aclose()
    assert [first.message_id, second.message_id] == ["m-1", "m-2"]
    assert clock.sleeps == []


class ClockThatSends(ManualClock):
    """A manual clock that sends a message while the source sleeps."""

    def __init__(self) -> None:
        super().__init__()
        self.sink: QueueSink | None = None

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if self.sink is not None:
            await self.sink.send(message("m-late"))
            self.sink = None


async def test_continuous_receive_sleeps_check_every_when_nothing_is_visible(tmp_path: Path) -> None:
    clock = ClockThatSends()
    async with sink(tmp_path, clock) as out, source(tmp_path, clock, check_every=5.0) as src:
        clock.sink = out
        stream = src.receive(once=False)
        late = await anext(stream)
        await stream.aclose()
    assert late.message_id == "m-late"
    assert clock.sleeps == [5.0]


# -- the helper API --------------------------------------------------------------------------------


async def test_peek_does_not_lease(tmp_path: Path) -> None:
    clock = ManualClock()
    async with sink(tmp_path, clock) as out, source(tmp_path, clock) as src:
        await out.send(message("m-1"))
        await out.send(message("m-2"))
        async with QueueDatabase(tmp_path / "data" / "queues.db") as db:
            assert [m.message_id for m in await db.peek("dal-orders", limit=1)] == ["m-1"]
            assert await db.queues() == {"dal-orders": 2}
        assert [i.message_id for i in await take(src)] == ["m-1", "m-2"]


async def test_depth_counts_leased_messages_until_acked(tmp_path: Path) -> None:
    clock = ManualClock()
    async with sink(tmp_path, clock) as out, source(tmp_path, clock) as src:
        await out.send(message("m-1"))
        [inbound] = await take(src)
        assert await depth(tmp_path) == 1
        await inbound.ack(Outcome.DELIVERED)
        assert await depth(tmp_path) == 0


async def test_closed_queue_database_refuses_work(tmp_path: Path) -> None:
    db = QueueDatabase(tmp_path / "q.db")
    with pytest.raises(PermanentError):
        await db.depth("x")
