"""Scenario (c), examples/rest-order-intake: web store orders POSTed to crossdock's own HTTP server with an
API key and an Idempotency-Key are answered 202 with a correlation id, and published to a topic exchange
on RabbitMQ as canonical Order events carrying that correlation id.

The example's route files run as they are: the engine runs as a daemon with its HTTP server on a free
port of 127.0.0.1 (`INTAKE_LISTEN`), aiohttp is the web store, and the broker is a private RabbitMQ node
(a virtual host of its own per test) whose bound queue the test reads. Each refusal is checked for what
it answers and for what it leaves behind: nothing stored, nothing published, nothing lost.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import anyio
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from polling import eventually
from servers.ports import free_port

from crossdock.cli import main as cli_main
from crossdock.connectors.http.inbox import Inbox
from crossdock.dsl.lint import lint
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.services import Services
from crossdock.engine.stores.base import DeadLetter

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rest-order-intake"
ROUTES = EXAMPLE / "routes"
FIXTURES = ROUTES / "fixtures" / "web-order-to-order"
ORDER = (FIXTURES / "order-1001.input.json").read_bytes()
GOLDEN = json.loads((FIXTURES / "order-1001.expected.json").read_text())
SAMPLES = EXAMPLE / "samples"
ROUTE = "Web orders over REST"
QUEUE = "erp.orders.in"
KEYS = "webstore-key-1\nmarketplace-key-2\n"


@dataclass
class Store:
    """The web store's side: an HTTP client for crossdock's intake, and the engine behind it."""

    engine: Engine
    url: str
    data: Path
    session: aiohttp.ClientSession

    async def post(self, body: bytes, *, key: str | None = "webstore-key-1", idempotency_key: str | None = None,
                   content_type: str = "application/json") -> tuple[int, Mapping[str, str], Any]:
        headers = {"Content-Type": content_type}
        if key is not None:
            headers["X-Api-Key"] = key
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        async with self.session.post(f"{self.url}/v1/orders", data=body, headers=headers) as answer:
            return answer.status, answer.headers, json.loads(await answer.read())

    async def inbox(self) -> int:
        """Requests accepted and not yet finished by the route (on disk, through a connection of its own)."""
        async with Inbox(self.data / "http-inbox.db") as inbox:
            return len(await inbox.rows("POST /v1/orders", after=0, limit=100))

    async def dead_letters(self) -> list[DeadLetter]:
        async with embedded_stores(self.data) as stores:
            return await stores.dead_letters.list(limit=100)

    @property
    def stats(self) -> Any:
        return self.engine.stats.routes[ROUTE]

    async def settled(self, received: int) -> None:
        """Wait until the route received `received` requests and finished with all of them."""
        await eventually(lambda: self.stats.received == received and self.stats.acked == received,
                         f"the route received and finished {received} request(s)")
        await eventually(lambda: self._inbox_is(0), "the inbox is empty")

    async def _inbox_is(self, count: int) -> bool:
        return await self.inbox() == count


@asynccontextmanager
async def running(tmp_path: Path, amqp_url: str) -> AsyncIterator[Store]:
    """`crossdock run` on the example's route files, as a daemon; stopped (drained) afterwards."""
    port = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "CHANNEL_API_KEYS").write_text(KEYS)
    env = {"INTAKE_LISTEN": f"127.0.0.1:{port}", "AMQP_URL": amqp_url, "CROSSDOCK_SECRETS_DIR": str(secrets)}
    result = lint([ROUTES], require_env=True, env=env)
    assert result.plan is not None and not result.diagnostics, [str(d) for d in result.diagnostics]
    data = tmp_path / "data"
    async with embedded_stores(data) as stores, aiohttp.ClientSession() as session:
        engine = Engine(result.plan, Services(stores=stores, data_dir=data, env=env, rng=random.Random(11)))
        stop = anyio.Event()
        store = Store(engine, f"http://127.0.0.1:{port}", data, session)
        async with anyio.create_task_group() as group:
            group.start_soon(partial(engine.run, once=False, stop=stop, drain_timeout=10))
            try:
                await eventually(lambda: _ready(store), "the intake answers /ready with 200")
                yield store
            finally:
                stop.set()
    assert engine.runners[ROUTE].failure is None


async def _ready(store: Store) -> bool:
    try:
        async with store.session.get(f"{store.url}/ready") as answer:
            return answer.status == 200
    except aiohttp.ClientConnectionError:
        return False


async def take_all(channel: AbstractChannel) -> list[AbstractIncomingMessage]:
    queue = await channel.declare_queue(QUEUE, passive=True)
    taken = []
    while (got := await queue.get(no_ack=True, fail=False)) is not None:
        taken.append(got)
    return taken


async def test_an_order_is_answered_202_and_published_once_with_its_correlation_id(
        tmp_path: Path, amqp_url: str, broker: AbstractChannel) -> None:
    async with running(tmp_path, amqp_url) as store:
        status, headers, body = await store.post(ORDER, idempotency_key="order-1001-try")
        assert status == 202
        correlation_id = body["correlation_id"]
        assert body == {"correlation_id": correlation_id, "status": "accepted"}
        assert headers["X-Correlation-ID"] == correlation_id
        await store.settled(1)

        # The web store's retry (it never saw the 202): the first answer again, nothing stored.
        replay_status, replay_headers, replayed = await store.post(ORDER, idempotency_key="order-1001-try")
        assert (replay_status, replayed) == (202, body)
        assert replay_headers["Idempotent-Replayed"] == "true"
        assert replay_headers["X-Correlation-ID"] == correlation_id
        assert await store.inbox() == 0 and store.stats.received == 1

    [event] = await take_all(broker)
    assert json.loads(event.body) == GOLDEN  # the canonical Order, money as exact decimal strings
    assert event.correlation_id == correlation_id
    assert event.routing_key == "order.created.webstore" and event.exchange == "orders"
    assert event.headers["x-ship-from"] == "DAL"
    assert event.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert event.message_id  # stable per request, for consumers that dedupe
    assert await store.dead_letters() == []


async def test_the_same_key_with_another_order_is_422_and_publishes_nothing(
        tmp_path: Path, amqp_url: str, broker: AbstractChannel) -> None:
    other = (SAMPLES / "order-1002.json").read_bytes()
    async with running(tmp_path, amqp_url) as store:
        first = await store.post(ORDER, idempotency_key="key-7")
        await store.settled(1)
        status, _, refusal = await store.post(other, idempotency_key="key-7")
        assert (status, refusal["error"]) == (422, "HTP024")
        assert first[2]["correlation_id"] in refusal["message"]  # it names the request that holds the key
        # The key belongs to the caller: another channel's API key may use the same one.
        theirs = await store.post(other, key="marketplace-key-2", idempotency_key="key-7")
        assert theirs[0] == 202
        await store.settled(2)
    assert sorted(json.loads(m.body)["po_number"] for m in await take_all(broker)) == ["WEB-1001", "WEB-1002"]


async def test_an_order_posted_again_under_a_new_key_is_a_duplicate_and_publishes_nothing(
        tmp_path: Path, amqp_url: str, broker: AbstractChannel) -> None:
    async with running(tmp_path, amqp_url) as store:
        assert (await store.post(ORDER, idempotency_key="first"))[0] == 202
        await store.settled(1)
        assert (await store.post(ORDER, idempotency_key="second"))[0] == 202  # a new request to intake
        await store.settled(2)
        assert store.stats.duplicates == 1  # skipped by order number: WEB-1001 was published already
    assert len(await take_all(broker)) == 1


async def test_refusals_at_intake_store_and_publish_nothing_and_a_bad_order_is_dead_lettered(
        tmp_path: Path, amqp_url: str, broker: AbstractChannel) -> None:
    truncated = (SAMPLES / "order-1006-truncated.json").read_bytes()
    no_address = (SAMPLES / "order-1005-no-address.json").read_bytes()
    async with running(tmp_path, amqp_url) as store:
        missing_key = await store.post(ORDER, key=None)
        wrong_key = await store.post(ORDER, key="stolen-key")
        # Malformed JSON is refused at the door with the parser's position, before anything is
        # stored: the caller is told at once, so nothing is accepted and then lost.
        malformed = await store.post(truncated)
        # Well-formed JSON that is not an order the map can make is accepted (intake checks only the
        # body's syntax), then dead-lettered by the route with the failing field.
        accepted = await store.post(no_address)
        await store.settled(1)

    assert (missing_key[0], missing_key[2]["error"]) == (401, "HTP010")
    assert (wrong_key[0], wrong_key[2]["error"]) == (401, "HTP011")
    assert (malformed[0], malformed[2]["error"]) == (400, "HTP025")
    assert "line 3" in malformed[2]["message"]
    assert accepted[0] == 202
    assert store.stats.received == 1  # only the well-formed one reached the route
    [letter] = await store.dead_letters()
    assert letter.correlation_id == accepted[2]["correlation_id"]  # findable by what the caller was told
    assert letter.payload == no_address and letter.route == ROUTE
    assert letter.code == "V001" and "ship_to" in json.dumps(letter.error)
    assert await take_all(broker) == []


def test_the_example_lints_clean_and_its_maps_pass_their_fixtures(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["lint", str(ROUTES)]) == 0
    assert "0 error(s), 0 warning(s)" in capsys.readouterr().out
    assert cli_main(["test", str(ROUTES)]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out
