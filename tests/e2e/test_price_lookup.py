"""examples/price-lookup: a channel's GET answered from the ERP over REST, with the last good answer
while the ERP is down (request-reply intake, a `call` step, a map and `reply`)."""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path

import aiohttp
import anyio
import pytest
from servers.erp_standin import Answer, ErpStandIn
from servers.ports import free_port

from crossdock.dsl.lint import lint
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.services import Services

pytestmark = pytest.mark.anyio

ROUTES = Path(__file__).resolve().parents[2] / "examples" / "price-lookup" / "routes"
JSON = {"Content-Type": "application/json"}


async def test_prices_are_answered_and_the_last_answer_stands_in_while_the_erp_is_down(
    tmp_path: Path, erp: ErpStandIn
) -> None:
    erp.reset()
    erp.answer(Answer(200, b'{"item_number": "WID-1", "list_price": "12.5", "currency_code": "usd"}', JSON),
               Answer(503, b"maintenance"), Answer(503, b"maintenance"))
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "CHANNEL_API_KEYS").write_text("chan-1\n")
    (secrets / "ERP_TOKEN").write_text("erp-token-77")
    port = free_port()
    env = {"LOOKUP_LISTEN": f"127.0.0.1:{port}", "ERP_URL": erp.base_url, "CROSSDOCK_SECRETS_DIR": str(secrets)}
    result = lint([ROUTES], require_env=True, env=env)
    assert result.plan is not None and not result.errors, [str(d) for d in result.errors]
    url = f"http://127.0.0.1:{port}"
    answers = []
    async with embedded_stores(tmp_path / "data") as stores, aiohttp.ClientSession() as session:
        engine = Engine(result.plan, Services(stores=stores, data_dir=tmp_path / "data", env=env,
                                              rng=random.Random(3)))
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(partial(engine.run, once=False, stop=stop, drain_timeout=2.0))
            with anyio.fail_after(10):
                while True:
                    try:
                        async with session.get(f"{url}/ready") as ready:
                            if ready.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        pass
                    await anyio.sleep(0.02)
            for sku in ("WID-1", "WID-1", "GAD-2"):
                async with session.get(f"{url}/v1/prices/{sku}", headers={"X-Api-Key": "chan-1"}) as answer:
                    answers.append((answer.status, answer.headers.get("Cache-Control"), await answer.json()))
            stop.set()
    fresh, fallback, unknown = answers
    assert fresh == (200, "max-age=60", {"sku": "WID-1", "price": "12.50", "currency": "USD", "stale": False})
    assert fallback == (200, "max-age=60", {"sku": "WID-1", "price": "12.50", "currency": "USD", "stale": True})
    assert unknown[0] == 422 and unknown[2]["error"] == "RST503"
    assert [r.path for r in erp.requests] == ["/prices/WID-1", "/prices/WID-1", "/prices/GAD-2"]
    assert all(r.headers["Authorization"] == "Bearer erp-token-77" for r in erp.requests)
