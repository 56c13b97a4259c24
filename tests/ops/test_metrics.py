"""/metrics after scripted runs: each metric's exact value, scraped over HTTP from the admin app."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import anyio
import pytest
from ops_world import admin_of, engine_for, names, run_once, scrape, value, write_project
from polling import eventually
from prometheus_client import REGISTRY
from servers.erp_standin import Answer, ErpStandIn
from servers.ports import free_port

from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import embedded_stores
from crossdock.ops.reload import ReloadStatus

pytestmark = pytest.mark.anyio

ROUTES = """
connection "inbox" is file
  folder "inbox"
  files "*.json"
  settle 0s
end

connection "stock" is file
  folder "stock"
  settle 0s
end

connection "warehouse" is queue
end

connection "erp-api" is rest
  base url env "ERP_URL"
end

route "orders"
  from file "inbox"
  process 1 at a time
  read json
  skip duplicates by po for 30 days
  keep only when qty > 0
  to rest "erp-api"
    post "/orders"
  retry 3 times backoff fixed 1s
  dead letter to store
end

route "stock"
  from file "stock"
  to queue "warehouse" queue "stock.in"
  dead letter to store
end
"""


def order(po: str, qty: int = 1) -> bytes:
    return json.dumps({"po": po, "qty": qty}).encode()


async def test_a_scripted_run_gives_exact_counts_latency_observations_and_store_gauges(
        tmp_path: Path, erp: ErpStandIn) -> None:
    # 6 files: 3 delivered (the first after two 503s), a duplicate, broken JSON, a zero quantity
    erp.answer(Answer(503), Answer(503))
    routes = write_project(tmp_path, ROUTES, {
        "inbox": {"a.json": order("PO-1"), "b.json": order("PO-2"), "c.json": order("PO-3"),
                  "d.json": order("PO-1"), "e.json": b'{"po": ', "f.json": order("PO-4", qty=0)},
        "stock": {"s1": b"10", "s2": b"20"},
    })
    clock = ManualClock()
    async with embedded_stores(tmp_path / "data") as stores:
        engine = engine_for(tmp_path, routes, stores, clock=clock, env={"ERP_URL": erp.base_url})
        await run_once(engine)
        now = clock.now()
        # two sets to Acme whose 997 is overdue, one not due yet
        await stores.edi.sent.record("acme", "7", [("0001", "850"), ("0002", "850")], sent_at=now - 100,
                                     due_at=now - 50)
        await stores.edi.sent.record("acme", "8", [("0003", "850")], sent_at=now, due_at=now + 3600)
        clock.advance(60)
        async with admin_of(engine) as (_, url):
            samples = await scrape(url)

    orders, stock = {"route": "orders"}, {"route": "stock"}
    rest = 'to rest "erp-api"'
    assert value(samples, "crossdock_messages_received_total", **orders, step='from file "inbox"') == 6
    assert value(samples, "crossdock_messages_received_total", **stock, step='from file "stock"') == 2
    assert value(samples, "crossdock_messages_delivered_total", **orders, step=rest) == 3
    assert value(samples, "crossdock_messages_delivered_total", **stock,
                 step='to queue "warehouse" queue "stock.in"') == 2
    assert value(samples, "crossdock_messages_retried_total", **orders, step=rest) == 2
    assert value(samples, "crossdock_messages_dead_lettered_total", **orders, step="read json") == 1
    assert value(samples, "crossdock_messages_duplicates_total", **orders, step="skip duplicates") == 1
    assert value(samples, "crossdock_messages_filtered_total", **orders, step="keep only when") == 1
    # every step timed once per message that reached it; every message timed once end to end
    for kind, count in (("read", 6), ("dedupe", 5), ("filter", 4), ("deliver", 3)):
        assert value(samples, "crossdock_stage_duration_seconds_count", **orders, kind=kind) == count
    assert value(samples, "crossdock_message_duration_seconds_count", **orders) == 6
    assert value(samples, "crossdock_message_duration_seconds_count", **stock) == 2
    # the runs are over: nothing in flight, no route up
    for route in (orders, stock):
        assert value(samples, "crossdock_route_up", **route) == 0
        assert value(samples, "crossdock_messages_in_flight", **route) == 0
        assert value(samples, "crossdock_oldest_unacknowledged_age_seconds", **route) == 0
    assert value(samples, "crossdock_queue_depth", database="queues.db", queue="stock.in") == 2
    endpoint = f"127.0.0.1:{erp.port}/orders"
    assert value(samples, "crossdock_circuit_breaker_state", **orders, step=rest, endpoint=endpoint) == 0
    assert value(samples, "crossdock_dead_letters") == 1
    # the dead letter was stored after the two 1s retry waits, when the clock stood where it ended
    assert value(samples, "crossdock_oldest_dead_letter_age_seconds") == 60
    assert value(samples, "crossdock_x12_acknowledgments_overdue", partner="acme") == 2


BREAKER = """
connection "inbox" is file
  folder "inbox"
  settle 0s
end

connection "erp-api" is rest
  base url env "ERP_URL"
  circuit breaker threshold 1
  circuit breaker cool down 30s
end

route "orders"
  from file "inbox"
  to rest "erp-api"
    post "/orders"
  retry 1 times backoff fixed 1s
  dead letter to store
end
"""


async def test_breaker_state_is_2_while_open_and_1_once_half_open(tmp_path: Path, erp: ErpStandIn) -> None:
    erp.answer(Answer(503))  # opens the circuit; the retry a second later fails fast (RST004)
    routes = write_project(tmp_path, BREAKER, {"inbox": {"a.json": order("PO-1")}})
    clock = ManualClock()
    async with embedded_stores(tmp_path / "data") as stores:
        engine = engine_for(tmp_path, routes, stores, clock=clock, env={"ERP_URL": erp.base_url})
        await run_once(engine)
        async with admin_of(engine) as (_, url):
            labels = {"route": "orders", "step": 'to rest "erp-api"', "endpoint": f"127.0.0.1:{erp.port}/orders"}
            assert value(await scrape(url), "crossdock_circuit_breaker_state", **labels) == 2
            clock.advance(30)
            assert value(await scrape(url), "crossdock_circuit_breaker_state", **labels) == 1
    assert len(erp.requests) == 1


INTAKE = """
connection "api" is http
  listen "127.0.0.1:PORT"
end

connection "erp-api" is rest
  base url env "ERP_URL"
end

route "intake"
  from http "api" post "/v1/orders"
  process 1 at a time
  to rest "erp-api"
    post "/orders"
  dead letter to store
end
"""


async def test_in_flight_its_age_and_the_http_inbox_while_a_sink_holds_a_message(
        tmp_path: Path, erp: ErpStandIn) -> None:
    erp.answer(Answer(mode="hold"))
    port = free_port()
    routes = write_project(tmp_path, INTAKE.replace("PORT", str(port)))
    clock = ManualClock()
    async with embedded_stores(tmp_path / "data") as stores, aiohttp.ClientSession() as client:
        engine = engine_for(tmp_path, routes, stores, clock=clock, env={"ERP_URL": erp.base_url})
        stop = anyio.Event()
        async with anyio.create_task_group() as group, admin_of(engine) as (_, url):
            group.start_soon(lambda: engine.run(once=False, stop=stop, drain_timeout=5))
            await eventually(lambda: _ready(client, port), "the admin port answers /ready", within=10.0)
            for po in ("PO-1", "PO-2", "PO-3"):
                async with client.post(f"http://127.0.0.1:{port}/v1/orders", data=order(po),
                                       headers={"Content-Type": "application/json"}) as answer:
                    assert answer.status == 202
            await eventually(lambda: len(erp.requests) == 1, "the first order is held at the ERP", within=10.0)
            clock.advance(5)
            held = await scrape(url)
            erp.release()
            await eventually(lambda: len(erp.requests) == 3, "three orders reached the ERP", within=10.0)
            await eventually(lambda: engine.stats.routes["intake"].acked == 3, "three orders acknowledged", within=10.0)
            done = await scrape(url)
            stop.set()

    route = {"route": "intake"}
    assert value(held, "crossdock_route_up", **route) == 1
    assert value(held, "crossdock_messages_in_flight", **route) == 1
    assert value(held, "crossdock_oldest_unacknowledged_age_seconds", **route) == 5
    assert value(held, "crossdock_http_inbox_depth", **route, endpoint="POST /v1/orders") == 3
    assert value(done, "crossdock_messages_in_flight", **route) == 0
    assert value(done, "crossdock_oldest_unacknowledged_age_seconds", **route) == 0
    assert value(done, "crossdock_http_inbox_depth", **route, endpoint="POST /v1/orders") == 0
    assert value(done, "crossdock_messages_delivered_total", **route, step='to rest "erp-api"') == 3


async def _ready(client: aiohttp.ClientSession, port: int) -> bool:
    try:
        async with client.get(f"http://127.0.0.1:{port}/ready") as answer:
            return answer.status == 200
    except aiohttp.ClientConnectionError:
        return False


async def test_each_engine_has_its_own_registry_and_the_global_one_holds_none_of_it(tmp_path: Path) -> None:
    routes = write_project(tmp_path, ROUTES)
    async with embedded_stores(tmp_path / "data") as stores:
        first = engine_for(tmp_path, routes, stores, env={"ERP_URL": "http://127.0.0.1:9"})
        second = engine_for(tmp_path, routes, stores, env={"ERP_URL": "http://127.0.0.1:9"})
    assert first.telemetry.metrics.registry is not second.telemetry.metrics.registry
    assert not {name for name in REGISTRY._names_to_collectors if name.startswith("crossdock_")}


async def test_bad_scrape_requests_get_a_4xx_never_a_500(tmp_path: Path) -> None:
    routes = write_project(tmp_path, ROUTES)
    async with embedded_stores(tmp_path / "data") as stores:
        engine = engine_for(tmp_path, routes, stores, env={"ERP_URL": "http://127.0.0.1:9"})
        async with admin_of(engine) as (_, url), aiohttp.ClientSession() as client:
            statuses = {}
            for method, path, headers in (
                    ("GET", "/metrics?name[]=", {}),
                    ("GET", "/metrics?name[]=%ff%fe", {}),
                    ("GET", "/metrics?name[]=crossdock_dead_letters&name[]=1bad", {}),
                    ("GET", "/metrics", {"Accept": "application/openmetrics-text; version=abc"}),
                    ("POST", "/metrics", {}),
                    ("DELETE", "/metrics", {}),
                    ("GET", "/metrics/extra", {})):
                async with client.request(method, url + path, headers=headers) as answer:
                    statuses[(method, path, tuple(headers.values()))] = answer.status
                    if answer.status >= 400:
                        assert (await answer.json())["error"].startswith("ADM")
            async with client.get(url + "/metrics?name[]=crossdock_dead_letters") as answer:
                only = await answer.text()
    assert all(400 <= status < 500 for status in statuses.values()), statuses
    assert statuses[("GET", "/metrics?name[]=", ())] == 400
    assert statuses[("POST", "/metrics", ())] == 403  # a write, and no admin password is set
    assert [line for line in only.splitlines() if not line.startswith("#")] == ["crossdock_dead_letters 0.0"]


async def test_gauges_are_there_before_any_message_and_reloads_follow_the_reload_status(tmp_path: Path) -> None:
    routes = write_project(tmp_path, ROUTES)
    async with embedded_stores(tmp_path / "data") as stores:
        engine = engine_for(tmp_path, routes, stores, env={"ERP_URL": "http://127.0.0.1:9"})
        async with admin_of(engine) as (_, url):
            before = await scrape(url)
            engine.reload_status = ReloadStatus(at=0.0, ok=False, reloads=3, failures=1)
            after = await scrape(url)
    assert {"crossdock_route_up", "crossdock_messages_in_flight", "crossdock_oldest_unacknowledged_age_seconds",
            "crossdock_dead_letters", "crossdock_oldest_dead_letter_age_seconds"} <= names(before)
    assert (value(before, "crossdock_reloads_total"), value(before, "crossdock_reload_failures_total")) == (0, 0)
    assert "crossdock_last_reload_success" not in names(before)
    assert (value(after, "crossdock_reloads_total"), value(after, "crossdock_reload_failures_total"),
            value(after, "crossdock_last_reload_success")) == (3, 1, 0)
