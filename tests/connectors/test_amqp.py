"""The amqp connector against a real RabbitMQ node (tests/servers/rabbitmq.py): publish and consume,
confirms and returns, acknowledgment only when the runtime says so, topology, error codes, reconnection.

Every test works on queues and exchanges of its own (unique names), so tests never see each other's
messages. The reconnection tests stop and start the broker's application (`rabbitmqctl stop_app`),
which closes every connection and refuses new ones until `start_app`: durable queues and persistent
messages survive, as in a broker restart.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import aio_pika
import anyio
import anyio.to_thread
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, DeliveryMode
from polling import eventually as eventually_within
from servers.rabbitmq import RabbitMQNode
from yarl import URL

from crossdock.connectors import amqp
from crossdock.connectors.base import ConnectorContext
from crossdock.dsl.lint import lint
from crossdock.engine.errors import PermanentError, TransientError, TransientKind
from crossdock.engine.message import CORRELATION_HEADER, Inbound, Message, Outcome

pytestmark = pytest.mark.anyio

CONTEXT = ConnectorContext(owner="test_amqp")
DEADLINE = 60.0  # seconds a broker may need to reconnect, restore consumers or dead-letter
eventually = partial(eventually_within, within=DEADLINE)


def unique(prefix: str) -> str:
    return f"test.{prefix}.{uuid.uuid4().hex[:10]}"


def options(url: str, **values: Any) -> dict[str, Any]:
    """Options as the runtime hands them over: every declared default, then `values`."""
    defaults = {spec.key: spec.default for spec in amqp.SPEC.options if spec.default is not None}
    return {**defaults, "url": url, **values}


def message(message_id: str, body: bytes = b'{"po": "PO-1"}', correlation_id: str = "corr-1",
            headers: dict[str, str] | None = None, meta: dict[str, Any] | None = None) -> Message:
    return Message(body=body, route="test", message_id=message_id, correlation_id=correlation_id,
                   headers={CORRELATION_HEADER: correlation_id, **(headers or {})}, meta=meta or {})


@pytest.fixture
def amqp_url(rabbitmq: str) -> str:
    """These tests share the default virtual host (their names are unique): `broker` looks there."""
    return rabbitmq


async def ready_count(channel: AbstractChannel, queue: str) -> int:
    declared = await channel.declare_queue(queue, passive=True)
    return int(declared.declaration_result.message_count or 0)


async def take_all(channel: AbstractChannel, queue: str) -> list[AbstractIncomingMessage]:
    """Every message ready in `queue`, removed from it."""
    declared = await channel.declare_queue(queue, passive=True)
    taken = []
    while (got := await declared.get(no_ack=True, fail=False)) is not None:
        taken.append(got)
    return taken


async def next_inbound(received: AsyncIterator[Inbound]) -> Inbound:
    with anyio.fail_after(DEADLINE):
        return await anext(received)


async def send_all(sink: amqp.AmqpSink, messages: list[Message]) -> None:
    async with anyio.create_task_group() as group:
        for item in messages:
            group.start_soon(sink.send, item)


# ---- publish and consume ---------------------------------------------------------------------------


async def test_published_message_carries_ids_headers_and_is_persistent(
        rabbitmq: str, broker: AbstractChannel) -> None:
    queue = unique("props")
    async with amqp.open_sink(options(rabbitmq, queue=queue), CONTEXT) as sink:
        await sink.send(message("m-1", headers={"x-tenant": "acme"}))
    [got] = await take_all(broker, queue)
    assert got.body == b'{"po": "PO-1"}'
    assert got.message_id == "m-1" and got.correlation_id == "corr-1"
    assert got.delivery_mode == DeliveryMode.PERSISTENT
    assert got.headers == {"x-tenant": "acme"}  # the correlation id travels in its property only


async def test_round_trip_through_source_keeps_identity_headers_and_meta(rabbitmq: str) -> None:
    queue = unique("round-trip")
    async with amqp.open_sink(options(rabbitmq, queue=queue), CONTEXT) as sink:
        await sink.send(message("m-7", b"seven", "corr-7", headers={"x-tenant": "acme"}))
    async with amqp.open_source(options(rabbitmq, queue=queue), CONTEXT) as source:
        [inbound] = [item async for item in source.receive(once=True)]
        assert (inbound.body, inbound.message_id) == (b"seven", "m-7")
        assert inbound.headers == {"x-tenant": "acme", CORRELATION_HEADER: "corr-7"}
        assert inbound.meta == {"queue": queue, "exchange": "", "routing_key": queue, "redelivered": False}
        await inbound.ack(Outcome.DELIVERED)


async def test_message_without_message_id_gets_a_stable_id_from_exchange_key_and_body(
        rabbitmq: str, rabbitmq_node: RabbitMQNode, broker: AbstractChannel) -> None:
    queue = unique("content-id")
    await broker.declare_queue(queue, durable=True)
    for body in ("same", "same", "other"):
        # aio-pika gives every message it publishes a message_id, so the broker publishes these itself
        await anyio.to_thread.run_sync(
            rabbitmq_node.ctl, "eval",
            f'rabbit_basic:publish(rabbit_misc:r(<<"/">>, exchange, <<"">>), <<"{queue}">>, [], <<"{body}">>).')
    async with amqp.open_source(options(rabbitmq, queue=queue), CONTEXT) as source:
        received = [item async for item in source.receive(once=True)]
        ids = [item.message_id for item in received]
        assert ids[0] == ids[1] == amqp.content_id("", queue, b"same")
        assert ids[2] == amqp.content_id("", queue, b"other") != ids[0]
        assert received[0].headers == {}  # and no correlation id was sent
        for item in received:
            await item.release()
    async with amqp.open_source(options(rabbitmq, queue=queue), CONTEXT) as source:
        again = [item async for item in source.receive(once=True)]
        assert [item.message_id for item in again] == ids  # a redelivery keeps its id
        for item in again:
            await item.ack(Outcome.DELIVERED)


async def test_amqp_headers_arrive_as_text_and_the_correlation_id_property_as_header(
        rabbitmq: str, broker: AbstractChannel) -> None:
    queue = unique("headers-in")
    await broker.declare_queue(queue, durable=True)
    await broker.default_exchange.publish(aio_pika.Message(
        b"x", message_id="m-1", correlation_id="corr-9",
        headers={"count": 3, "ok": True, "tags": ["a", "b"], "table": {"k": 1}}), queue)
    async with amqp.open_source(options(rabbitmq, queue=queue), CONTEXT) as source:
        [inbound] = [item async for item in source.receive(once=True)]
        assert inbound.headers == {"count": "3", "ok": "True", "tags": '["a","b"]', "table": '{"k":1}',
                                   CORRELATION_HEADER: "corr-9"}
        assert inbound.message_id == "m-1"
        await inbound.ack(Outcome.DELIVERED)


async def test_many_sends_in_flight_are_each_confirmed(rabbitmq: str, broker: AbstractChannel) -> None:
    queue = unique("window")
    async with amqp.open_sink(options(rabbitmq, queue=queue), CONTEXT) as sink:
        await send_all(sink, [message(f"m-{n}", str(n).encode()) for n in range(300)])
        # every send returned only once confirmed, so the broker holds all of them now
        assert await ready_count(broker, queue) == 300
    assert sorted(int(m.body) for m in await take_all(broker, queue)) == list(range(300))


async def test_header_options_become_amqp_headers(rabbitmq: str, broker: AbstractChannel) -> None:
    queue = unique("header-option")
    sink_options = options(rabbitmq, queue=queue, header=[("x-warehouse", "rendered per message")])
    async with amqp.open_sink(sink_options, CONTEXT) as sink:
        # the runtime renders `header "Name" = expression` into meta["headers"]
        await sink.send(message("m-1", meta={"headers": [("x-warehouse", "DAL"), ("x-total", Decimal("12.50")),
                                                         ("x-missing", None)]}))
    [got] = await take_all(broker, queue)
    assert got.headers == {"x-warehouse": "DAL", "x-total": "12.50"}


async def test_sink_refuses_a_body_that_is_not_bytes(rabbitmq: str) -> None:
    async with amqp.open_sink(options(rabbitmq, queue=unique("not-bytes")), CONTEXT) as sink:
        with pytest.raises(PermanentError) as raised:
            await sink.send(message("m-1", body={"po": "PO-1"}))  # type: ignore[arg-type]
    assert raised.value.code == "AMQ008"


def test_sink_needs_an_exchange_or_a_queue() -> None:
    with pytest.raises(PermanentError) as raised:
        amqp.open_sink(options("amqp://localhost/"), CONTEXT)
    assert raised.value.code == "AMQ009"


LINTED = """
connection "broker" is amqp
  url env "AMQP_URL"
end

route "r"
  from amqp "broker" queue "orders.in"
    binding key "orders.*"
  to amqp "broker"
  to amqp "broker" exchange "orders"
    queue type quorum
    queue message ttl 1h
  to amqp "broker" queue "erp.orders"
    queue type quorum
    queue dead letter exchange "erp.dlx"
  to amqp "broker" exchange "orders"
    routing key "orders.dal"
    queue "orders.dal"
    binding key "orders.*"
  dead letter to amqp "broker" queue "erp.orders.dlq"
end
"""


HEADERS_LINTED = """
connection "broker" is amqp
  url env "AMQP_URL"
end

route "r"
  from amqp "broker" queue "dal"
    exchange "by-warehouse"
    exchange type headers
    binding header "warehouse" "DAL"
    binding match any
  to amqp "broker" exchange "by-warehouse"
    exchange type headers
    queue "everything"
  to amqp "broker" exchange "orders"
    queue "q"
    binding header "warehouse" "DAL"
  to amqp "broker" exchange "by-warehouse"
    exchange type headers
    queue "q2"
    binding key "dal"
    binding header "warehouse" = ship_from
    binding header "x-region" "south"
  dead letter to store
end
"""


def test_lint_checks_headers_exchange_bindings(tmp_path: Path) -> None:
    routes = tmp_path / "routes"
    routes.mkdir()
    (routes / "amqp.route").write_text(HEADERS_LINTED)
    result = lint([routes])
    assert sorted((d.code, d.span.line, d.span.column, d.message.split(",")[0]) for d in result.errors) == [
        ("OPT006", 12, 20, "the queue would be bound to the headers exchange with no header to match"),
        ("OPT006", 17, 5, "'binding header' is for a headers exchange"),
        ("OPT006", 21, 5, "a headers exchange ignores routing and binding keys"),
        ("OPT006", 22, 5, "'binding header' takes a value in quotes: the binding is declared once"),
        ("OPT006", 23, 5, "RabbitMQ does not match headers whose name starts with x-"),
    ]


def test_lint_finds_a_sink_without_target_and_queue_options_without_a_queue(tmp_path: Path) -> None:
    routes = tmp_path / "routes"
    routes.mkdir()
    (routes / "amqp.route").write_text(LINTED)
    result = lint([routes])
    assert sorted((d.code, d.span.line, d.span.column) for d in result.errors) == [
        ("OPT006", 8, 5),  # binding key on a source without an exchange
        ("OPT006", 9, 6),  # a sink naming neither exchange nor queue
        ("OPT006", 11, 5), ("OPT006", 12, 5),  # queue arguments on a sink without a queue
    ]


# ---- confirms and returns --------------------------------------------------------------------------


async def test_publish_to_an_exchange_deleted_under_the_sink_is_permanent_then_recovers(
        rabbitmq: str, broker: AbstractChannel) -> None:
    exchange, queue = unique("gone"), unique("gone-q")
    sink_options = options(rabbitmq, exchange=exchange, queue=queue, routing_key="k")
    async with amqp.open_sink(sink_options, CONTEXT) as sink:
        await broker.exchange_delete(exchange)
        with pytest.raises(PermanentError) as raised:
            await sink.send(message("m-1"))
        assert raised.value.code == "AMQ004"
        # the broker closed the channel; aio-pika reopens it and declares the exchange and binding again
        errors: list[str] = []

        async def sent() -> bool:
            try:
                await sink.send(message("m-2"))
            except TransientError as error:
                errors.append(error.code)
                return False
            return True

        await eventually(sent, "the sink publishes again")
        assert set(errors) <= {"AMQ001"}
    assert [m.message_id for m in await take_all(broker, queue)] == ["m-2"]


async def test_missing_exchange_with_declare_no_fails_at_open(rabbitmq: str) -> None:
    sink = amqp.open_sink(options(rabbitmq, exchange=unique("absent"), declare=False), CONTEXT)
    with pytest.raises(PermanentError) as raised:
        await sink.__aenter__()
    assert raised.value.code == "AMQ004"


async def test_unroutable_mandatory_message_is_permanent(rabbitmq: str, broker: AbstractChannel) -> None:
    exchange, late = unique("no-binding"), unique("bound-late")
    async with amqp.open_sink(options(rabbitmq, exchange=exchange, routing_key="nowhere"), CONTEXT) as sink:
        with pytest.raises(PermanentError) as raised:
            await sink.send(message("m-1"))
        assert raised.value.code == "AMQ006"
        await (await broker.declare_queue(late, durable=True)).bind(exchange, "nowhere")
        await sink.send(message("m-2"))  # a return leaves the channel open
    assert [m.message_id for m in await take_all(broker, late)] == ["m-2"]
    await broker.queue_delete(late)
    lenient = options(rabbitmq, exchange=exchange, routing_key="nowhere", mandatory=False)
    async with amqp.open_sink(lenient, CONTEXT) as sink:
        await sink.send(message("m-3"))  # the broker drops it, as asked


# ---- acknowledgment --------------------------------------------------------------------------------


async def test_message_not_acknowledged_is_delivered_again_after_the_consumer_closes(
        rabbitmq: str, broker: AbstractChannel) -> None:
    queue = unique("unacked")
    async with amqp.open_sink(options(rabbitmq, queue=queue), CONTEXT) as sink:
        await sink.send(message("m-1", b"one"))
        await sink.send(message("m-2", b"two"))
    async with amqp.open_source(options(rabbitmq, queue=queue), CONTEXT) as source:
        received = source.receive(once=False)
        first, second = await next_inbound(received), await next_inbound(received)
        await first.ack(Outcome.DELIVERED)
        assert second.body == b"two"  # taken, never acknowledged: the sinks did not all confirm
        await received.aclose()
    again = await take_all(broker, queue)
    assert [(m.body, m.redelivered) for m in again] == [(b"two", True)]


async def test_a_queue_deleted_under_the_consumer_is_declared_again_and_consumed(
        rabbitmq: str, broker: AbstractChannel) -> None:
    queue = unique("deleted")
    async with amqp.open_sink(options(rabbitmq, queue=queue), CONTEXT) as sink:
        await sink.send(message("m-before", b"before"))

    async def declared_again() -> bool:
        async with await aio_pika.connect(rabbitmq) as probing:
            try:  # a passive declaration of a queue that is not there closes the channel
                await (await probing.channel()).declare_queue(queue, passive=True)
            except aio_pika.exceptions.ChannelClosed:
                return False
        return True

    async with amqp.open_source(options(rabbitmq, queue=queue), CONTEXT) as source:
        received = source.receive(once=False)
        first = await next_inbound(received)  # the consumer is in place
        await first.ack(Outcome.DELIVERED)
        await broker.queue_delete(queue)  # the broker cancels the consumer
        await eventually(declared_again, "the source declares its queue again")
        await broker.default_exchange.publish(aio_pika.Message(b"after", message_id="m-after"), queue)
        second = await next_inbound(received)
        assert (second.body, second.message_id) == (b"after", "m-after")
        await second.ack(Outcome.DELIVERED)
        await received.aclose()
    assert await ready_count(broker, queue) == 0


async def test_released_message_is_requeued_and_received_again(rabbitmq: str) -> None:
    queue = unique("release")
    async with amqp.open_sink(options(rabbitmq, queue=queue), CONTEXT) as sink:
        await sink.send(message("m-1", b"again"))
    async with amqp.open_source(options(rabbitmq, queue=queue), CONTEXT) as source:
        received = source.receive(once=False)
        first = await next_inbound(received)
        await first.release()
        second = await next_inbound(received)
        assert (second.body, second.message_id, second.meta["redelivered"]) == (b"again", "m-1", True)
        await second.ack(Outcome.DELIVERED)
        await received.aclose()
    async with amqp.open_source(options(rabbitmq, queue=queue), CONTEXT) as source:
        assert [item async for item in source.receive(once=True)] == []


async def test_acks_sent_just_before_the_source_closes_all_reach_the_broker(
        rabbitmq: str, broker: AbstractChannel, rabbitmq_node: RabbitMQNode) -> None:
    queue = unique("last-acks")
    async with amqp.open_sink(options(rabbitmq, queue=queue), CONTEXT) as sink:
        await send_all(sink, [message(f"m-{n}", f"{n}".encode()) for n in range(50)])
    async with amqp.open_source(options(rabbitmq, queue=queue, prefetch=50), CONTEXT) as source:
        received = source.receive(once=False)
        taken = [await next_inbound(received) for _ in range(50)]
        await received.aclose()
        for inbound in taken:  # an ack does not wait for its frame to be written: the close must
            await inbound.ack(Outcome.DELIVERED)
    listed = await anyio.to_thread.run_sync(rabbitmq_node.queues)
    assert (listed[queue]["messages_ready"], listed[queue]["messages_unacknowledged"]) == (0, 0)


@pytest.mark.parametrize("outcome", [Outcome.FILTERED, Outcome.DUPLICATE, Outcome.DEAD_LETTERED])
async def test_every_outcome_removes_the_message_by_default(
        rabbitmq: str, broker: AbstractChannel, outcome: Outcome) -> None:
    queue, failed = unique("outcome"), unique("outcome-failed")
    await broker.declare_queue(failed, durable=True)
    source_options = options(rabbitmq, queue=queue, queue_dead_letter_exchange="", queue_dead_letter_routing_key=failed)
    async with amqp.open_source(source_options, CONTEXT) as source:
        await broker.default_exchange.publish(aio_pika.Message(b"x"), queue)
        [inbound] = [item async for item in source.receive(once=True)]
        await inbound.ack(outcome)
    assert await ready_count(broker, queue) == 0
    assert await ready_count(broker, failed) == 0  # acknowledged, so the broker did not dead-letter it


async def test_on_dead_letter_reject_hands_the_message_to_the_queues_dead_letter_exchange(
        rabbitmq: str, broker: AbstractChannel) -> None:
    queue, dlx, failed = unique("reject"), unique("dlx"), unique("reject-failed")
    dead = await broker.declare_exchange(dlx, aio_pika.ExchangeType.DIRECT, durable=True)
    await (await broker.declare_queue(failed, durable=True)).bind(dead, "failed")
    source_options = options(rabbitmq, queue=queue, queue_dead_letter_exchange=dlx,
                             queue_dead_letter_routing_key="failed", on_dead_letter="reject")
    async with amqp.open_source(source_options, CONTEXT) as source:
        await broker.default_exchange.publish(aio_pika.Message(b"bad", message_id="m-bad"), queue)
        await broker.default_exchange.publish(aio_pika.Message(b"good", message_id="m-good"), queue)
        bad, good = [item async for item in source.receive(once=True)]
        await bad.ack(Outcome.DEAD_LETTERED)
        await good.ack(Outcome.DELIVERED)

    async def dead_lettered() -> bool:
        return await ready_count(broker, failed) == 1

    await eventually(dead_lettered, "the rejected message reaches the dead-letter queue")
    [got] = await take_all(broker, failed)
    assert (got.body, got.message_id) == (b"bad", "m-bad")
    assert got.headers["x-death"][0]["reason"] == "rejected"
    assert await ready_count(broker, queue) == 0


# ---- topology --------------------------------------------------------------------------------------


async def test_quorum_queue_is_declared_with_its_arguments_and_declaring_again_is_idempotent(
        rabbitmq: str, rabbitmq_node: RabbitMQNode) -> None:
    queue = unique("quorum")
    source_options = options(rabbitmq, queue=queue, queue_type="quorum", queue_dead_letter_exchange="erp.dlx",
                             queue_dead_letter_routing_key="erp.failed", queue_message_ttl=3600.0)
    for _ in range(2):
        async with amqp.open_source(source_options, CONTEXT):
            pass
    listed = (await anyio.to_thread.run_sync(rabbitmq_node.queues))[queue]
    assert listed["type"] == "quorum" and listed["durable"] is True
    assert listed["arguments"] == {
        "x-queue-type": "quorum", "x-dead-letter-exchange": "erp.dlx",
        "x-dead-letter-routing-key": "erp.failed", "x-message-ttl": 3_600_000,
    }
    conflicting = amqp.open_source(options(rabbitmq, queue=queue), CONTEXT)  # classic, without the arguments
    with pytest.raises(PermanentError) as raised:
        await conflicting.__aenter__()
    assert raised.value.code == "AMQ005"


async def test_quorum_source_reports_deliveries(rabbitmq: str, broker: AbstractChannel) -> None:
    queue = unique("quorum-count")
    async with amqp.open_source(options(rabbitmq, queue=queue, queue_type="quorum"), CONTEXT) as source:
        await broker.default_exchange.publish(aio_pika.Message(b"x"), queue)
        received = source.receive(once=False)
        first = await next_inbound(received)
        await first.release()
        second = await next_inbound(received)
        assert second.meta["deliveries"] == 2 and "x-delivery-count" not in second.headers
        await second.ack(Outcome.DELIVERED)
        await received.aclose()


async def test_bindings_route_by_key_and_unbound_keys_come_back(rabbitmq: str) -> None:
    exchange, queue = unique("topic"), unique("bound")
    source_options = options(rabbitmq, queue=queue, exchange=exchange, exchange_type="topic",
                             binding_key=["orders.*", "returns.#"])
    async with amqp.open_source(source_options, CONTEXT) as source:
        for key, expected in (("orders.dal", None), ("returns.rno.late", None), ("invoices.dal", "AMQ006")):
            sink_options = options(rabbitmq, exchange=exchange, exchange_type="topic", routing_key=key)
            async with amqp.open_sink(sink_options, CONTEXT) as sink:
                if expected is None:
                    await sink.send(message(key, key.encode()))
                else:
                    with pytest.raises(PermanentError) as raised:
                        await sink.send(message(key, key.encode()))
                    assert raised.value.code == expected
        received = [item async for item in source.receive(once=True)]
        assert [(item.body, item.meta["exchange"], item.meta["routing_key"]) for item in received] == [
            (b"orders.dal", exchange, "orders.dal"), (b"returns.rno.late", exchange, "returns.rno.late")]
        for item in received:
            await item.ack(Outcome.DELIVERED)


async def test_headers_exchange_routes_by_the_binding_headers(rabbitmq: str) -> None:
    exchange, dallas, either = unique("headers"), unique("dal"), unique("dal-or-rush")
    dal = options(rabbitmq, queue=dallas, exchange=exchange, exchange_type="headers",
                  binding_header=[("warehouse", "DAL"), ("channel", "web")])
    rush = options(rabbitmq, queue=either, exchange=exchange, exchange_type="headers", binding_match="any",
                   binding_header=[("warehouse", "DAL"), ("priority", "rush")])
    sink_options = options(rabbitmq, exchange=exchange, exchange_type="headers", header=True)
    sent = {"web-dal": {"warehouse": "DAL", "channel": "web"}, "edi-dal": {"warehouse": "DAL"},
            "rush-rno": {"warehouse": "RNO", "priority": "rush"}}
    async with amqp.open_source(dal, CONTEXT) as first, amqp.open_source(rush, CONTEXT) as second:
        async with amqp.open_sink(sink_options, CONTEXT) as sink:
            for name, headers in sent.items():
                await sink.send(message(name, name.encode(), meta={"headers": list(headers.items())}))
            with pytest.raises(PermanentError) as raised:  # matches neither binding: it comes back
                await sink.send(message("nowhere", b"nowhere", meta={"headers": [("warehouse", "ATL")]}))
            assert raised.value.code == "AMQ006"
        got = {queue: [item async for item in source.receive(once=True)]
               for queue, source in ((dallas, first), (either, second))}
        for item in (*got[dallas], *got[either]):
            await item.ack(Outcome.DELIVERED)
    assert [item.body for item in got[dallas]] == [b"web-dal"]  # all of its headers
    assert [item.body for item in got[either]] == [b"web-dal", b"edi-dal", b"rush-rno"]  # any one


async def test_sink_declares_and_binds_its_queue_to_its_exchange(rabbitmq: str, broker: AbstractChannel) -> None:
    exchange, queue = unique("fanout"), unique("fanout-q")
    sink_options = options(rabbitmq, exchange=exchange, exchange_type="fanout", queue=queue)
    async with amqp.open_sink(sink_options, CONTEXT) as sink:
        await sink.send(message("m-1"))
    assert [m.message_id for m in await take_all(broker, queue)] == ["m-1"]


# ---- errors at the boundary ------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "code", "kind"), [
    ("wrong password", "AMQ003", None),
    ("unknown virtual host", "AMQ011", None),
    ("closed port", "AMQ001", TransientKind.CONNECTION),
])
async def test_connection_failures_are_classified(rabbitmq: str, change: str, code: str,
                                                  kind: TransientKind | None) -> None:
    from servers.rabbitmq import free_port

    settings = {
        "wrong password": {"password": "not-the-password"},
        "unknown virtual host": {"vhost": "no-such-vhost"},
        "closed port": {"port": free_port()},
    }[change]
    source = amqp.open_source(options(rabbitmq, queue=unique("never"), **settings), CONTEXT)
    with pytest.raises(PermanentError if kind is None else TransientError) as raised:
        await source.__aenter__()
    assert raised.value.code == code
    if kind is not None:
        assert raised.value.kind is kind  # type: ignore[attr-defined]


def test_url_parts_can_be_overridden_and_the_password_is_never_shown() -> None:
    settings = amqp.ConnectionSettings.from_options(
        {"url": "amqp://guest:guest@broker.example:5672/", "host": "rabbit.internal", "port": 5673,
         "vhost": "erp/prod", "user": "crossdock", "password": "s3cret"}, CONTEXT)
    assert settings.url.host == "rabbit.internal" and settings.url.port == 5673
    assert settings.url.path == "/erp/prod" and settings.url.raw_path == "/erp%2Fprod"
    assert (settings.url.user, settings.url.password) == ("crossdock", "s3cret")
    assert "s3cret" not in settings.safe_url
    with pytest.raises(PermanentError) as raised:
        amqp.ConnectionSettings.from_options({"url": "http://broker.example/"}, CONTEXT)
    assert raised.value.code == "AMQ009"


def test_reconnect_waits_grow_with_the_outage_within_bounds() -> None:
    assert [amqp.reconnect_wait(outage, 30.0) for outage in (0.0, 0.2, 1.0, 3.0, 12.0, 100.0)] == [
        0.5, 0.5, 1.0, 3.0, 12.0, 30.0]


async def test_connection_waits_the_first_reconnect_wait_unless_the_url_sets_one() -> None:
    default = amqp.BackoffConnection(URL("amqp://localhost/"), longest_wait=30.0)
    assert default.reconnect_interval == amqp.RECONNECT_FIRST_WAIT
    configured = amqp.BackoffConnection(URL("amqp://localhost/?reconnect_interval=2"), longest_wait=30.0)
    assert configured.reconnect_interval == 2.0


# ---- reconnection ----------------------------------------------------------------------------------


@asynccontextmanager
async def broker_outage(node: RabbitMQNode) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Stop the broker's application; the body calls the function given to start it again (it is
    started on the way out in any case)."""
    running = False

    async def restart() -> None:
        nonlocal running
        await anyio.to_thread.run_sync(node.ctl, "start_app")
        running = True

    await anyio.to_thread.run_sync(node.ctl, "stop_app")
    try:
        yield restart
    finally:
        if not running:
            await anyio.to_thread.run_sync(node.ctl, "start_app")


async def ready_after_restart(url: str, queue: str) -> list[AbstractIncomingMessage]:
    """What `queue` holds, seen through a new connection (the broker fixture's died with the restart)."""
    async with await aio_pika.connect(url) as connection:
        return await take_all(await connection.channel(), queue)


async def test_consumer_resumes_after_a_broker_restart_without_losing_or_repeating_acknowledged_work(
        rabbitmq: str, rabbitmq_node: RabbitMQNode) -> None:
    queue = unique("resume")
    async with amqp.open_sink(options(rabbitmq, queue=queue), CONTEXT) as sink:
        for n in (1, 2, 3):
            await sink.send(message(f"m-{n}", f"{n}".encode()))
    async with amqp.open_source(options(rabbitmq, queue=queue), CONTEXT) as source:
        received = source.receive(once=False)
        first, second, third = [await next_inbound(received) for _ in range(3)]
        await first.ack(Outcome.DELIVERED)

        async def first_ack_arrived() -> bool:
            listed = await anyio.to_thread.run_sync(rabbitmq_node.queues)
            return listed[queue]["messages_unacknowledged"] == 2

        await eventually(first_ack_arrived, "the broker counts one message acknowledged")
        # stop_app returns once the broker closed every connection; the client saw the close meanwhile
        async with broker_outage(rabbitmq_node) as restart:
            # The channel these came on is gone: their delivery tags must not be used on the next one.
            with pytest.raises(TransientError) as raised:
                await second.ack(Outcome.DELIVERED)
            assert raised.value.code == "AMQ010"
            await third.release()  # nothing to send: the broker requeued it when the channel closed
            await restart()
            again = [await next_inbound(received) for _ in range(2)]
        assert sorted((item.message_id, item.meta["redelivered"]) for item in again) == [
            ("m-2", True), ("m-3", True)]
        for item in again:
            await item.ack(Outcome.DELIVERED)
        await received.aclose()
    assert await ready_after_restart(rabbitmq, queue) == []


async def test_sink_fails_transiently_while_the_broker_is_down_then_publishes_again(
        rabbitmq: str, rabbitmq_node: RabbitMQNode) -> None:
    queue = unique("sink-outage")
    async with amqp.open_sink(options(rabbitmq, queue=queue), CONTEXT) as sink:
        await sink.send(message("m-before"))
        async with broker_outage(rabbitmq_node) as restart:
            with pytest.raises(TransientError) as raised:
                await sink.send(message("m-during"))
            assert raised.value.code in ("AMQ001", "AMQ002") and raised.value.kind in (
                TransientKind.CONNECTION, TransientKind.TIMEOUT)
            await restart()

        async def sent() -> bool:
            try:
                await sink.send(message("m-during"))
            except TransientError:
                return False  # still reconnecting: the runtime would retry per the route's policy
            return True

        await eventually(sent, "the sink reconnected and published")
    assert [m.message_id for m in await ready_after_restart(rabbitmq, queue)] == ["m-before", "m-during"]
