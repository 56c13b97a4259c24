"""The `call` step: a lookup against a real HTTP stand-in, its answer as the message, and the fallback
to the last good answer while the system called is down."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import recording_connector as recording
from servers.erp_standin import Answer, ErpStandIn

from crossdock.connectors import base as connectors
from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.services import Services

pytestmark = pytest.mark.anyio

ROUTES = """
connection "inbox" is file
  folder "inbox"
  files "*.json"
  settle 0s
end

connection "erp" is rest
  base url "{base}"
end

route "price lookups"
  from file "inbox"
  read json
  call rest "erp" get "/prices/{{{{ sku }}}}"
    wait at most 2s
    fall back to last answer for 1h
  to recording channel "prices"
  dead letter to store
end
"""


@pytest.fixture(autouse=True)
def recording_sink(monkeypatch: pytest.MonkeyPatch, erp: ErpStandIn) -> Iterator[None]:
    monkeypatch.setitem(connectors._REGISTRY, "recording", "recording_connector")
    recording.reset()
    erp.reset()
    yield
    recording.reset()


async def run(tmp_path: Path, erp: ErpStandIn, clock: ManualClock, *skus: str) -> Engine:
    routes = tmp_path / "routes"
    routes.mkdir(exist_ok=True)
    (routes / "r.route").write_text(ROUTES.format(base=erp.base_url))
    inbox = tmp_path / "data" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    for number, sku in enumerate(skus):
        (inbox / f"{clock.now()}-{number}.json").write_text(json.dumps({"sku": sku}))
    result = lint([routes])
    assert result.plan is not None and not result.errors, [str(d) for d in result.errors]
    async with embedded_stores(tmp_path / "data") as stores:
        engine = Engine(result.plan, Services(stores=stores, data_dir=tmp_path / "data", clock=clock,
                                              rng=random.Random(1)))
        await engine.run(once=True, stop=anyio.Event())
    return engine


async def test_the_answer_becomes_the_message(tmp_path: Path, erp: ErpStandIn) -> None:
    erp.answer(Answer(200, b'{"sku": "WID-1", "price": "4.10"}', {"Content-Type": "application/json"}))
    await run(tmp_path, erp, ManualClock(), "WID-1")
    assert [r.path for r in erp.requests] == ["/prices/WID-1"]
    [delivered] = recording.RECEIVED["prices"]
    assert json.loads(delivered.body) == {"sku": "WID-1", "price": "4.10"}


async def test_the_last_good_answer_is_used_while_the_system_is_down(tmp_path: Path, erp: ErpStandIn) -> None:
    clock = ManualClock()
    erp.answer(Answer(200, b'{"price": "4.10"}', {"Content-Type": "application/json"}),
               Answer(503, b"maintenance"))
    routes = tmp_path / "routes"
    routes.mkdir()
    (routes / "r.route").write_text(ROUTES.format(base=erp.base_url))
    plan = lint([routes]).plan
    assert plan is not None
    inbox = tmp_path / "data" / "inbox"
    inbox.mkdir(parents=True)
    async with embedded_stores(tmp_path / "data") as stores:
        engine = Engine(plan, Services(stores=stores, data_dir=tmp_path / "data", clock=clock))
        (inbox / "1.json").write_text('{"sku": "WID-1"}')
        await engine.run(once=True, stop=anyio.Event())
        clock.advance(600)
        (inbox / "2.json").write_text('{"sku": "WID-1"}')
        await engine.run(once=True, stop=anyio.Event())
    assert [json.loads(m.body) for m in recording.RECEIVED["prices"]] == [{"price": "4.10"}, {"price": "4.10"}]
    assert len(erp.requests) == 2
    assert engine.stats.routes["price lookups"].dead_lettered == 0


async def test_no_answer_and_nothing_to_fall_back_on_is_dead_lettered(tmp_path: Path, erp: ErpStandIn) -> None:
    erp.answer(Answer(503, b"maintenance", {"Retry-After": "30"}))
    engine = await run(tmp_path, erp, ManualClock(), "WID-2")
    assert "prices" not in recording.RECEIVED
    assert engine.stats.routes["price lookups"].dead_lettered == 1
    async with embedded_stores(tmp_path / "data") as stores:
        [entry] = await stores.dead_letters.list()
    assert entry.code == "RST503" and entry.step == 'call rest "erp" get "/prices/{{ sku }}"'


async def test_a_slow_answer_counts_as_no_answer(tmp_path: Path, erp: ErpStandIn) -> None:
    erp.answer(Answer(200, b'{"price": "1"}', {"Content-Type": "application/json"}, delay=3.0))
    await run(tmp_path, erp, ManualClock(), "WID-3")
    async with embedded_stores(tmp_path / "data") as stores:
        [entry] = await stores.dead_letters.list()
    assert entry.code == "R006"
