"""Scenario (b), examples/inventory-allocation: stock events from two warehouses on AMQP become canonical
InventoryPositions, are split between two sales channels by a rule chosen per warehouse, and are sent
to both channels' REST APIs at once.

The example's route files run as they are against a private RabbitMQ node (a virtual host of its own
per test) and two HTTP stand-ins, one per channel, that record what they receive. The events published
are the example's samples; the test checks the exact quantity each channel received for each item and
warehouse, that an event from a warehouse without a split is rejected (R007, with the route's reason) and reaches no
channel, and that a channel that throttles is retried on its own without a second request to the other.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import aio_pika
import anyio
import pytest
from aio_pika.abc import AbstractChannel
from servers.erp_standin import Answer, ErpStandIn

from crossdock.cli import main as cli_main
from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.services import Services
from crossdock.engine.stores.base import DeadLetter

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inventory-allocation"
ROUTES = EXAMPLE / "routes"
SAMPLES = EXAMPLE / "samples"
DALLAS, RENO = "Dallas stock to the channels", "Reno stock to the channels"
QUEUES = {"wms.dal.stock": ["dal-wid-100", "dal-gad-200", "dal-cab-300"],
          "wms.rno.stock": ["rno-wid-100", "spk-wid-100", "rno-gad-200"]}
SHOP_KEY, MARKETPLACE_TOKEN = "shop-key-77", "mkt-token-31"


@pytest.fixture
def webstore(channels: tuple[ErpStandIn, ErpStandIn]) -> ErpStandIn:
    return channels[0]


@pytest.fixture
def marketplace(channels: tuple[ErpStandIn, ErpStandIn]) -> ErpStandIn:
    return channels[1]


async def publish_samples(broker: AbstractChannel) -> None:
    """What the two WMSs publish: each sample, persistent, in order, to its warehouse's queue."""
    for queue, samples in QUEUES.items():
        await broker.declare_queue(queue, durable=True)  # as the route's source declares it
        for sample in samples:
            await broker.default_exchange.publish(
                aio_pika.Message((SAMPLES / f"{sample}.json").read_bytes(), message_id=sample,
                                 content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                queue)


async def run(tmp_path: Path, env: dict[str, str], clock: ManualClock) -> tuple[Engine, list[DeadLetter]]:
    """`crossdock run --once` on the example's route files: both queues are drained, then it stops."""
    result = lint([ROUTES], require_env=True, env=env)
    assert result.plan is not None and not result.errors, [str(d) for d in result.errors]
    assert result.diagnostics == []
    data = tmp_path / "data"
    async with embedded_stores(data) as stores:
        engine = Engine(result.plan, Services(stores=stores, data_dir=data, clock=clock, env=env,
                                              rng=random.Random(3)))
        with anyio.fail_after(60):
            await engine.run(once=True, stop=anyio.Event())
        letters = await stores.dead_letters.list(limit=10)
    assert engine.runners[DALLAS].failure is None and engine.runners[RENO].failure is None
    return engine, letters


@pytest.fixture
def env(tmp_path: Path, webstore: ErpStandIn, marketplace: ErpStandIn, amqp_url: str) -> dict[str, str]:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "WEBSTORE_API_KEY").write_text(SHOP_KEY)
    (secrets / "MARKETPLACE_TOKEN").write_text(MARKETPLACE_TOKEN)
    return {"AMQP_URL": amqp_url, "WEBSTORE_URL": webstore.base_url, "MARKETPLACE_URL": marketplace.base_url,
            "CROSSDOCK_SECRETS_DIR": str(secrets)}


def received(server: ErpStandIn) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r.method, r.path, json.loads(r.body)) for r in server.requests]


async def test_each_channel_gets_its_share_of_each_warehouses_stock(
        tmp_path: Path, env: dict[str, str], webstore: ErpStandIn, marketplace: ErpStandIn,
        broker: AbstractChannel) -> None:
    await publish_samples(broker)

    engine, letters = await run(tmp_path, env, ManualClock())

    # Dallas splits 70/30: 100 available -> 70 and 30; 7 -> 4 and 2 (4.9 and 2.1 rounded down, one case
    # kept back); 3 on hand with 5 allocated is -2 available -> nothing to either channel.
    # Reno splits 40/60: 45 available -> 18 and 27; 11 on hand less 2 allocated = 9 -> 3 and 5.
    assert sorted(received(webstore)) == sorted([
        ("PUT", "/v1/locations/loc-dallas/stock/WID-100",
         {"sku": "WID-100", "location_id": "loc-dallas", "available": 70, "updated_at": "2026-03-02T10:15:00+00:00"}),
        ("PUT", "/v1/locations/loc-dallas/stock/GAD-200",
         {"sku": "GAD-200", "location_id": "loc-dallas", "available": 4, "updated_at": "2026-03-02T10:16:00+00:00"}),
        ("PUT", "/v1/locations/loc-dallas/stock/CAB-300",
         {"sku": "CAB-300", "location_id": "loc-dallas", "available": 0, "updated_at": "2026-03-02T10:16:30+00:00"}),
        ("PUT", "/v1/locations/loc-reno/stock/WID-100",
         {"sku": "WID-100", "location_id": "loc-reno", "available": 18, "updated_at": "2026-03-02T10:16:45+00:00"}),
        ("PUT", "/v1/locations/loc-reno/stock/GAD-200",
         {"sku": "GAD-200", "location_id": "loc-reno", "available": 3, "updated_at": "2026-03-02T10:17:00+00:00"}),
    ], key=repr)
    assert sorted(received(marketplace), key=repr) == sorted([
        ("POST", "/v2/inventory", {"seller_sku": "WID-100", "fulfilment_centre": "FC-US-TX-7", "quantity": 30,
                                   "unit": "UNIT", "as_of": "2026-03-02T10:15:00+00:00"}),
        ("POST", "/v2/inventory", {"seller_sku": "GAD-200", "fulfilment_centre": "FC-US-TX-7", "quantity": 2,
                                   "unit": "CASE", "as_of": "2026-03-02T10:16:00+00:00"}),
        ("POST", "/v2/inventory", {"seller_sku": "CAB-300", "fulfilment_centre": "FC-US-TX-7", "quantity": 0,
                                   "unit": "UNIT", "as_of": "2026-03-02T10:16:30+00:00"}),
        ("POST", "/v2/inventory", {"seller_sku": "WID-100", "fulfilment_centre": "FC-US-NV-2", "quantity": 27,
                                   "unit": "UNIT", "as_of": "2026-03-02T10:16:45+00:00"}),
        ("POST", "/v2/inventory", {"seller_sku": "GAD-200", "fulfilment_centre": "FC-US-NV-2", "quantity": 5,
                                   "unit": "CASE", "as_of": "2026-03-02T10:17:00+00:00"}),
    ], key=repr)
    # Whole units as JSON numbers, never text or fractions.
    assert all(isinstance(body["available"], int) for _, _, body in received(webstore))
    # Each channel with its own credentials.
    assert {r.headers["X-Shop-Key"] for r in webstore.requests} == {SHOP_KEY}
    assert {r.headers["Authorization"] for r in marketplace.requests} == {f"Bearer {MARKETPLACE_TOKEN}"}
    # One warehouse's events reach each channel in the order the WMS published them.
    assert [r.path.rsplit("/", 1)[1] for r in webstore.requests if "loc-dallas" in r.path] == [
        "WID-100", "GAD-200", "CAB-300"]

    # Sparks (SPK) has no split yet: the choice's `otherwise` rejected its event, which is in the
    # dead-letter store with the route's reason and the event as the WMS published it; neither
    # channel heard of it.
    [letter] = letters
    assert (letter.code, letter.route, letter.step) == ("R007", RENO, "reject")
    assert letter.error["message"].startswith("no channel split for this warehouse")
    assert letter.payload == (SAMPLES / "spk-wid-100.json").read_bytes()
    assert not any("SPK" in r.body.decode() or "SPK" in r.path for r in webstore.requests + marketplace.requests)
    dallas, reno = engine.stats.routes[DALLAS], engine.stats.routes[RENO]
    # `delivered` counts deliveries: one per channel for each event that was split
    assert (dallas.received, dallas.delivered, dallas.dead_lettered, dallas.acked) == (3, 6, 0, 3)
    assert (reno.received, reno.delivered, reno.dead_lettered, reno.acked) == (3, 4, 1, 3)
    # Every event was acknowledged, the dead-lettered one included (it is in the store).
    for queue in QUEUES:
        assert (await broker.declare_queue(queue, passive=True)).declaration_result.message_count == 0


async def test_a_throttled_channel_is_retried_on_its_own(
        tmp_path: Path, env: dict[str, str], webstore: ErpStandIn, marketplace: ErpStandIn,
        broker: AbstractChannel) -> None:
    await broker.declare_queue("wms.dal.stock", durable=True)
    await broker.default_exchange.publish(
        aio_pika.Message((SAMPLES / "dal-wid-100.json").read_bytes(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        "wms.dal.stock")
    marketplace.answer(Answer(429, b'{"error": "slow down"}', {"Retry-After": "3"}), Answer(200))
    clock = ManualClock()

    engine, letters = await run(tmp_path, env, clock)

    assert letters == []
    assert [body["available"] for _, _, body in received(webstore)] == [70]  # sent once
    assert [body["quantity"] for _, _, body in received(marketplace)] == [30, 30]  # the 429, then the retry
    assert clock.sleeps == [3.0]  # the marketplace's Retry-After, as the floor of the wait
    stats = engine.stats.routes[DALLAS]
    assert (stats.delivered, stats.retried) == (2, 1)


def test_the_example_lints_clean_and_its_maps_pass_their_fixtures(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["lint", str(ROUTES)]) == 0
    assert "0 error(s), 0 warning(s)" in capsys.readouterr().out
    assert cli_main(["test", str(ROUTES)]) == 0
    assert "8 passed, 0 failed" in capsys.readouterr().out
