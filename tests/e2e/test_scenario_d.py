"""Scenario (d), examples/erp-pricelist: the ERP pushes a price list as XML to crossdock's HTTP intake; the
web store gets its prices as a canonical PriceList (JSON) and the marketplace its own prices in its own
JSON feed, each over REST; a document that fails the XSD is dead-lettered with its lines, and one with
an external entity is refused without the entity ever being read.

The example's route files run as they are: the engine as a daemon with its HTTP server on a free port
(`PRICES_LISTEN`), aiohttp as the ERP, and two HTTP stand-ins for the channels that record what they
receive. Prices are compared as the exact text the channels received ("124.50", never 124.5).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from polling import eventually
from servers.erp_standin import Answer, ErpStandIn
from servers.ports import free_port

from crossdock.cli import main as cli_main
from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock, SystemClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.services import Services
from crossdock.engine.stores.base import DeadLetter

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "erp-pricelist"
ROUTES = EXAMPLE / "routes"
FIXTURES = ROUTES / "fixtures"
SUMMER = (FIXTURES / "pricelist-2026-q2.xml").read_bytes()
BAD = (EXAMPLE / "samples" / "pricelist-bad-currency.xml").read_bytes()
XXE = (EXAMPLE / "samples" / "pricelist-xxe.xml").read_bytes()
ROUTE = "ERP price lists to the channels"
ERP_KEY, SHOP_KEY, MARKETPLACE_TOKEN = "erp-push-key-4", "shop-key-77", "mkt-token-31"




@dataclass
class Erp:
    """The ERP's side: it pushes price lists to crossdock's intake."""

    engine: Engine
    url: str
    data: Path
    session: aiohttp.ClientSession

    async def push(self, body: bytes, *, key: str = ERP_KEY, idempotency_key: str | None = None,
                   ) -> tuple[int, Mapping[str, str], Any]:
        headers = {"Content-Type": "application/xml", "X-Api-Key": key}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        async with self.session.post(f"{self.url}/v1/pricelists", data=body, headers=headers) as answer:
            return answer.status, answer.headers, json.loads(await answer.read())

    async def finished(self, count: int) -> None:
        stats = self.engine.stats.routes[ROUTE]
        await eventually(lambda: stats.received == count and stats.acked == count,
                         f"the route received and finished {count} price list(s)")

    async def dead_letters(self) -> list[DeadLetter]:
        async with embedded_stores(self.data) as stores:
            return await stores.dead_letters.list(limit=100)


@asynccontextmanager
async def running(tmp_path: Path, webstore: ErpStandIn, marketplace: ErpStandIn,
                  clock: SystemClock | ManualClock | None = None) -> AsyncIterator[Erp]:
    """`crossdock run` on the example's route files, as a daemon; stopped afterwards."""
    port = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    for name, value in {"ERP_PUSH_KEYS": ERP_KEY, "WEBSTORE_API_KEY": SHOP_KEY,
                        "MARKETPLACE_TOKEN": MARKETPLACE_TOKEN}.items():
        (secrets / name).write_text(value)
    env = {"PRICES_LISTEN": f"127.0.0.1:{port}", "WEBSTORE_URL": webstore.base_url,
           "MARKETPLACE_URL": marketplace.base_url, "CROSSDOCK_SECRETS_DIR": str(secrets)}
    result = lint([ROUTES], require_env=True, env=env)
    assert result.plan is not None and not result.diagnostics, [str(d) for d in result.diagnostics]
    data = tmp_path / "data"
    async with embedded_stores(data) as stores, aiohttp.ClientSession() as session:
        engine = Engine(result.plan, Services(stores=stores, data_dir=data, env=env, rng=random.Random(2),
                                              clock=clock or SystemClock()))
        erp = Erp(engine, f"http://127.0.0.1:{port}", data, session)
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(partial(engine.run, once=False, stop=stop, drain_timeout=10))
            try:
                await _wait_ready(erp)
                yield erp
            finally:
                stop.set()
    assert engine.runners[ROUTE].failure is None


async def _wait_ready(erp: Erp) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            async with erp.session.get(f"{erp.url}/ready") as answer:
                if answer.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the intake never answered /ready with 200")
        await anyio.sleep(0.05)


async def test_each_channel_gets_its_own_prices_from_the_same_xml(
        tmp_path: Path, channels: tuple[ErpStandIn, ErpStandIn]) -> None:
    webstore, marketplace = channels
    async with running(tmp_path, webstore, marketplace) as erp:
        status, headers, accepted = await erp.push(SUMMER, idempotency_key="release-2026-Q2-1")
        assert status == 202 and headers["X-Correlation-ID"] == accepted["correlation_id"]
        await erp.finished(1)
        # The ERP's call timed out on its side and is retried: same answer, nothing pushed twice.
        again = await erp.push(SUMMER, idempotency_key="release-2026-Q2-1")
        assert again[0] == 202 and again[2] == accepted and again[1]["Idempotent-Replayed"] == "true"

    [web] = webstore.requests
    assert (web.method, web.path) == ("PUT", "/pricelists/PL-2026-Q2")
    assert web.headers["X-Shop-Key"] == SHOP_KEY and web.headers["Content-Type"].startswith("application/json")
    assert web.headers["X-Correlation-ID"] == accepted["correlation_id"]
    prices = json.loads(web.body)
    assert prices == json.loads((FIXTURES / "pricelist-2026-q2.web.json").read_text())
    # The web prices and nothing else, as exact decimal text: no marketplace or wholesale price, and no
    # marketplace-only item.
    assert prices["channel"] == "web"
    assert [(i["sku"], i["unit"], i["unit_price"], i.get("min_quantity")) for i in prices["items"]] == [
        ("WID-100", "each", "12.90", None), ("WID-100", "each", "11.40", "10"),
        ("GAD-200", "case", "118.00", None), ("CAB-300", "each", "0.10", None)]

    [feed_request] = marketplace.requests
    assert (feed_request.method, feed_request.path) == ("PUT", "/v2/price-feeds/PL-2026-Q2")
    assert feed_request.headers["Authorization"] == f"Bearer {MARKETPLACE_TOKEN}"
    feed = json.loads(feed_request.body)
    assert feed == json.loads((FIXTURES / "pricelist-2026-q2.feed.json").read_text())
    # The marketplace's prices, two decimals each ("124.5" in the XML, "39.9900" too many), its quantity
    # break as a tier, and the item sold only on the web store left out.
    assert [(o["seller_sku"], o["unit"], o["price"], o.get("list_price"),
             [(t["from_quantity"], t["price"]) for t in o["tiers"]]) for o in feed["offers"]] == [
        ("WID-100", "UNIT", "13.49", "14.99", [("10", "12.75")]),
        ("GAD-200", "CASE", "124.50", None, []),
        ("KIT-400", "PACK", "39.99", "49.00", [])]
    assert b'"price":"124.50"' in feed_request.body.replace(b" ", b"")  # text in the JSON, never a float
    assert await erp.dead_letters() == []


async def test_a_list_failing_the_xsd_is_dead_lettered_with_its_lines_and_an_xxe_is_refused(
        tmp_path: Path, channels: tuple[ErpStandIn, ErpStandIn]) -> None:
    webstore, marketplace = channels
    async with running(tmp_path, webstore, marketplace) as erp:
        # Not even well formed: refused at the door, with libxml2's position, and never stored.
        broken = await erp.push(b"<PriceList><Item></PriceList>")
        invalid = await erp.push(BAD)  # well formed, so accepted: the route checks it against the XSD
        entity = await erp.push(XXE)  # well formed too; the entity is never resolved at intake
        await erp.finished(2)

    assert (broken[0], broken[2]["error"]) == (400, "HTP025")
    assert invalid[0] == entity[0] == 202
    assert webstore.requests == [] and marketplace.requests == []  # neither channel heard of them
    letters = {letter.correlation_id: letter for letter in await erp.dead_letters()}
    assert len(letters) == 2

    schema = letters[invalid[2]["correlation_id"]]
    assert (schema.code, schema.route, schema.payload) == ("D208", ROUTE, BAD)
    assert schema.error["position"]["line"] == 2
    # Every XSD error with its line: the currency (line 2), the price "12,90" (4), the Item without
    # a sku (6) and the channel "retail" (7).
    assert [p["line"] for p in schema.error["problems"]] == [2, 4, 6, 7]
    assert any("usd" in p["message"] for p in schema.error["problems"])

    refused = letters[entity[2]["correlation_id"]]
    assert (refused.code, refused.payload) == ("D205", XXE)
    # Refused at the external entity's declaration (line 3), before the parser resolves anything.
    assert refused.error["position"]["line"] == 3 and "entity" in refused.error["message"].lower()
    passwd = Path("/etc/passwd").read_text().splitlines()[0]
    assert passwd not in json.dumps([refused.error, refused.error_chain, refused.meta], default=str)


async def test_a_marketplace_that_is_down_is_retried_without_pushing_to_the_web_store_again(
        tmp_path: Path, channels: tuple[ErpStandIn, ErpStandIn]) -> None:
    webstore, marketplace = channels
    marketplace.answer(Answer(503, b"maintenance", {"Retry-After": "30"}), Answer(200))
    clock = ManualClock(start=time.time())  # the retry's waits are recorded, not slept
    async with running(tmp_path, webstore, marketplace, clock=clock) as erp:
        assert (await erp.push(SUMMER))[0] == 202
        await erp.finished(1)
    assert len(webstore.requests) == 1
    assert len(marketplace.requests) == 2 and marketplace.requests[0].body == marketplace.requests[1].body
    assert clock.sleeps == [30.0]  # one wait: the marketplace's Retry-After as its floor
    assert await erp.dead_letters() == []


def test_the_example_lints_clean_and_its_maps_pass_their_fixtures(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["lint", str(ROUTES)]) == 0
    assert "0 error(s), 0 warning(s)" in capsys.readouterr().out
    assert cli_main(["test", str(ROUTES)]) == 0
    assert "4 passed, 0 failed" in capsys.readouterr().out
