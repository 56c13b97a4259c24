"""A route from RabbitMQ to RabbitMQ run by the engine: `from amqp ... read json ... map ... to amqp ...`.

Orders published to an input queue come out of the output queue as canonical Orders, each once, with
its correlation id; a malformed one is dead-lettered (store and dead-letter queue) while the others
flow; every input message is acknowledged, so nothing comes back after the engine stops. Run as a
daemon (consuming) and with `--once` (taking what is ready, then stopping).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import aio_pika
import anyio
import pytest
from aio_pika.abc import AbstractChannel
from servers.forwarder import forwarding
from servers.ports import free_port
from yarl import URL

from crossdock.dsl.lint import lint
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.plan import Plan
from crossdock.engine.runtime import Services

pytestmark = pytest.mark.anyio

ORDERS = 40
DEADLINE = 60.0

ROUTES = """
connection "broker" is amqp
  url env "AMQP_URL"
  prefetch 20
end

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

route "orders"
  from amqp "broker" queue "{inbound}"
  read json
  map with "Order in"
  to amqp "broker" exchange "{exchange}"
    exchange type topic
    routing key "orders.dal"
    binding key "orders.*"
    queue "{outbound}"
  dead letter to amqp "broker" queue "{dead}"
  process 8 at a time
end
"""

MALFORMED = b'{"po": "PO-BAD",\n  "items": [\n'


def order(number: int) -> bytes:
    return json.dumps({"po": f"PO-{number}", "name": "Acme", "warehouse": "DAL",
                       "items": [{"sku": "A-1", "qty": str(number)}]}).encode()


@pytest.fixture
def amqp_url(rabbitmq: str) -> str:
    """These tests share the default virtual host (their names are unique): `broker` looks there."""
    return rabbitmq


async def ready(channel: AbstractChannel, queue: str) -> int:
    return int((await channel.declare_queue(queue, passive=True)).declaration_result.message_count or 0)


async def take_all(channel: AbstractChannel, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    declared = await channel.declare_queue(queue, passive=True)
    taken = []
    while (got := await declared.get(no_ack=True, fail=False)) is not None:
        taken.append(got)
    return taken


def project(tmp_path: Path) -> tuple[dict[str, str], Plan]:
    """The route file with queue and exchange names of its own, linted: the names and the plan."""
    tag = uuid.uuid4().hex[:10]
    names = {"inbound": f"e2e.in.{tag}", "exchange": f"e2e.orders.{tag}", "outbound": f"e2e.dal.{tag}",
             "dead": f"e2e.dlq.{tag}"}
    routes = tmp_path / "routes"
    routes.mkdir()
    (routes / "amqp.route").write_text(ROUTES.format(**names))
    result = lint([routes])
    assert not result.errors, [str(d) for d in result.errors]
    assert result.plan is not None
    return names, result.plan


@pytest.mark.parametrize("once", [False, True], ids=["daemon", "once"])
async def test_orders_flow_from_queue_to_queue_and_a_malformed_one_is_dead_lettered(
        tmp_path: Path, rabbitmq: str, broker: AbstractChannel, once: bool) -> None:
    names, plan = project(tmp_path)

    await broker.declare_queue(names["inbound"], durable=True)
    bodies = [order(n) for n in range(1, ORDERS + 1)]
    bodies.insert(ORDERS // 2, MALFORMED)
    for number, body in enumerate(bodies):
        await broker.default_exchange.publish(
            aio_pika.Message(body, message_id=f"in-{number}", correlation_id=f"corr-{number}",
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT), names["inbound"])

    data = tmp_path / "data"
    async with embedded_stores(data) as stores:
        engine = Engine(plan, Services(stores=stores, data_dir=data, env={"AMQP_URL": rabbitmq}))
        stop = anyio.Event()
        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: engine.run(once=once, stop=stop, drain_timeout=DEADLINE))
                if not once:
                    while engine.stats.routes["orders"].acked < len(bodies):
                        await anyio.sleep(0.05)
                    stop.set()
        [dead_letter] = await stores.dead_letters.list(limit=10)

    assert engine.runners["orders"].failure is None
    stats = engine.stats.routes["orders"]
    assert (stats.received, stats.delivered, stats.dead_lettered, stats.acked) == (
        ORDERS + 1, ORDERS, 1, ORDERS + 1)

    delivered = await take_all(broker, names["outbound"])
    assert sorted(json.loads(m.body)["po_number"] for m in delivered) == sorted(f"PO-{n}" for n in range(1, 41))
    by_po = {json.loads(m.body)["po_number"]: m for m in delivered}
    first = by_po["PO-1"]
    assert json.loads(first.body)["lines"][0]["quantity"] == "1"
    assert first.correlation_id == "corr-0" and first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert len({m.message_id for m in delivered}) == ORDERS  # each its own stable id, for consumers to dedupe

    assert dead_letter.code == "D103" and dead_letter.payload == MALFORMED
    assert dead_letter.correlation_id == f"corr-{ORDERS // 2}"
    [copy] = await take_all(broker, names["dead"])
    assert copy.body == MALFORMED and copy.headers["X-Error-Code"] == "D103"

    # every input message was acknowledged: with the engine's connections closed, none came back
    assert await ready(broker, names["inbound"]) == 0


async def test_a_broker_that_is_down_when_the_engine_starts_is_waited_for_and_the_route_then_runs(
        tmp_path: Path, rabbitmq: str, broker: AbstractChannel, caplog: pytest.LogCaptureFixture) -> None:
    names, plan = project(tmp_path)
    await broker.declare_queue(names["inbound"], durable=True)
    await broker.default_exchange.publish(
        aio_pika.Message(order(7), message_id="in-7", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        names["inbound"])
    later = free_port()  # where the broker will be: nothing listens there yet
    broker_port = URL(rabbitmq).port
    assert broker_port is not None

    data = tmp_path / "data"
    async with embedded_stores(data) as stores:
        env = {"AMQP_URL": str(URL(rabbitmq).with_port(later))}
        engine = Engine(plan, Services(stores=stores, data_dir=data, env=env))
        stats = engine.stats.routes["orders"]
        stop, stopped = anyio.Event(), anyio.Event()

        async def run() -> None:
            await engine.run(once=False, stop=stop, drain_timeout=DEADLINE)
            stopped.set()

        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as group:
                group.start_soon(run)
                while stats.source_errors == 0:  # the first try failed: the broker is not there
                    await anyio.sleep(0.05)
                assert stats.received == 0
                async with forwarding(later, broker_port):  # the broker is up now
                    while stats.acked < 1:
                        await anyio.sleep(0.05)
                    stop.set()
                    await stopped.wait()  # the engine closes its connections while the broker is there

    assert engine.runners["orders"].failure is None
    assert (stats.delivered, stats.dead_lettered) == (1, 0)
    [delivered] = await take_all(broker, names["outbound"])
    assert json.loads(delivered.body)["po_number"] == "PO-7"
    assert await ready(broker, names["inbound"]) == 0
    waited = [r.getMessage() for r in caplog.records if "could not start" in r.getMessage()]
    assert waited and "AMQ001" in waited[0] and "trying again in 1s" in waited[0]
