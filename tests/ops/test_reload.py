"""Hot reload (`crossdock run --watch`): edited route files are swapped in without losing or repeating a
message; files that do not lint keep the old routes running and say why.

The routes read JSON files from a folder and deliver them to the `gate` test sink
(tests/gate_connector.py): it holds every message until the test opens its gate, so a reload
happens while messages are in flight.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio
import gate_connector
import pytest
from gate_connector import RECEIVED, WAITING, gate

from crossdock.cli import main
from crossdock.connectors import base as connectors
from crossdock.dsl.lint import lint
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.services import Services
from crossdock.ops.reload import RouteWatcher

pytestmark = pytest.mark.anyio

# ---- a sink that holds messages until its gate opens (tests/gate_connector.py) ---------------------


@pytest.fixture(autouse=True)
def gate_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(connectors._REGISTRY, "gate", "gate_connector")
    gate_connector.reset()
    yield
    gate_connector.reset()


def open_gate(name: str) -> None:
    gate(name).set()


def delivered(name: str) -> list[str]:
    return [json.loads(m.body)["id"] for m in RECEIVED.get(name, [])]


# ---- a deployment --------------------------------------------------------------------------------


def route(name: str, folder: str, gate: str, *, concurrency: int = 2) -> str:
    return textwrap.dedent(f'''\
        route "{name}"
          from file
            folder "{folder}"
            files "*.json"
            check every 50ms
            settle 0s
          read json
          track by id
          skip duplicates by id for 1 day
          to gate
            name "{gate}"
          process {concurrency} at a time
          dead letter to store
        end
        ''')


def drop(data: Path, folder: str, *ids: str) -> None:
    inbox = data / folder
    inbox.mkdir(parents=True, exist_ok=True)
    for id_ in ids:
        (inbox / f"{id_}.json").write_text(json.dumps({"id": id_}))


async def until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Poll `condition` until it holds; fail with `what` after `seconds`."""
    with anyio.move_on_after(seconds):
        while not condition():
            await anyio.sleep(0.02)
        return
    raise AssertionError(f"timed out waiting for {what}")


ORDERS = route("orders", "inbox", "v1")


class Deployment:
    """A routes folder and a data folder, with an engine running them under a fast route watcher."""

    def __init__(self, tmp_path: Path, engine: Engine) -> None:
        self.routes = tmp_path / "routes"
        self.data = tmp_path / "data"
        self.engine = engine

    def write(self, name: str, text: str) -> None:
        (self.routes / name).write_text(text)


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    """The `orders` route (inbox -> gate v1) running with a route watcher that looks every 50 ms."""
    (tmp_path / "routes").mkdir()
    (tmp_path / "routes" / "orders.route").write_text(ORDERS)
    result = lint([tmp_path / "routes"])
    assert result.plan is not None and not result.errors, [str(d) for d in result.errors]
    async with embedded_stores(tmp_path / "data") as stores:
        engine = Engine(result.plan, Services(stores=stores, data_dir=tmp_path / "data"))
        watcher = RouteWatcher([tmp_path / "routes"], engine, result.project, interval=0.05)
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: engine.run(once=False, stop=stop, drain_timeout=10, watch=watcher.run))
            yield Deployment(tmp_path, engine)
            for name in list(gate_connector.GATES):
                open_gate(name)
            stop.set()


async def test_a_changed_route_finishes_what_it_holds_then_its_new_version_takes_the_rest(
        deployment: Deployment) -> None:
    engine = deployment.engine
    drop(deployment.data, "inbox", *(f"m{i}" for i in range(8)))
    await until(lambda: WAITING.get("v1") == 2, "two messages held by the v1 sink")

    deployment.write("orders.route", route("orders", "inbox", "v2"))
    await until(lambda: engine.route_states()["orders"] == "draining", "the old version to stop receiving")
    assert WAITING["v1"] == 2 and delivered("v1") == []  # still holding them while it drains
    open_gate("v1")
    await until(lambda: engine.route_states()["orders"] == "running" and engine.reload_status is not None,
                "the new version to start")
    open_gate("v2")
    await until(lambda: len(delivered("v1")) + len(delivered("v2")) == 8, "every message delivered")

    every = delivered("v1") + delivered("v2")
    assert sorted(every) == [f"m{i}" for i in range(8)]  # each exactly once
    assert 2 <= len(delivered("v1")) < 8 and delivered("v2")  # in flight by the old version, the rest by the new
    assert engine.reload_status.ok and engine.reload_status.changes.changed == ["orders"]
    assert sorted(p.name for p in (deployment.data / "inbox" / "done").iterdir()) == sorted(f"{i}.json" for i in every)
    events = await engine.services.stores.journal.events(route="orders")
    delivered_events = [e.business_key for e in events if e.event == "delivered"]
    assert sorted(delivered_events) == sorted(every)


async def test_a_file_that_does_not_lint_keeps_the_old_routes_running_and_says_why(deployment: Deployment) -> None:
    engine = deployment.engine
    open_gate("v1")
    old_runner = engine.runners["orders"]
    broken = route("orders", "inbox", "v2").replace("  to gate", "  to gatee")
    deployment.write("orders.route", broken)
    await until(lambda: engine.reload_status is not None, "the reload to be tried")

    status = engine.reload_status
    assert not status.ok and status.failures == 1
    [problem] = status.diagnostics
    assert (problem.code, problem.span.line, problem.span.column) == ("NAME006", 10, 6)
    assert engine.runners["orders"] is old_runner and engine.route_states() == {"orders": "running"}
    drop(deployment.data, "inbox", "after-the-broken-edit")
    await until(lambda: delivered("v1") == ["after-the-broken-edit"], "the old route to deliver")

    deployment.write("orders.route", route("orders", "inbox", "v2"))
    await until(lambda: engine.reload_status is not status and engine.reload_status.ok, "the fixed file to load")
    assert engine.reload_status.failures == 1 and engine.reload_status.changes.changed == ["orders"]


async def test_a_new_route_starts_and_a_removed_one_stops(deployment: Deployment) -> None:
    engine = deployment.engine
    open_gate("v1")
    open_gate("returns")
    old_runner = engine.runners["orders"]
    deployment.write("returns.route", route("returns", "returns-inbox", "returns"))
    await until(lambda: engine.route_states().get("returns") == "running", "the new route to start")
    assert engine.reload_status.changes.added == ["returns"] and engine.reload_status.changes.changed == []
    assert engine.runners["orders"] is old_runner  # untouched: nothing it uses changed
    drop(deployment.data, "returns-inbox", "r1")
    drop(deployment.data, "inbox", "o1")
    await until(lambda: delivered("returns") == ["r1"] and delivered("v1") == ["o1"], "both routes to deliver")

    (deployment.routes / "orders.route").unlink()
    await until(lambda: "orders" not in engine.runners, "the removed route to stop")
    assert engine.reload_status.changes.removed == ["orders"]
    drop(deployment.data, "inbox", "o2")
    drop(deployment.data, "returns-inbox", "r2")
    await until(lambda: delivered("returns") == ["r1", "r2"], "the remaining route to deliver")
    assert delivered("v1") == ["o1"] and (deployment.data / "inbox" / "o2.json").exists()


async def test_an_edit_that_changes_nothing_a_route_runs_leaves_it_running(deployment: Deployment) -> None:
    engine = deployment.engine
    old_runner = engine.runners["orders"]
    deployment.write("orders.route", "# the order route, moved down a line\n" + ORDERS)
    await until(lambda: engine.reload_status is not None, "the reload")
    assert engine.reload_status.ok and not engine.reload_status.changes
    assert engine.runners["orders"] is old_runner


def test_run_check_says_whether_the_routes_would_start(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "orders.route").write_text(ORDERS)
    assert main(["run", str(tmp_path), "--check"]) == 0
    assert "1 route(s) would start" in capsys.readouterr().out

    (tmp_path / "orders.route").write_text(ORDERS.replace('  to gate', '  to gatee'))
    assert main(["run", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'orders.route'}:10:6: NAME006 error" in out and "would not start" in out

    (tmp_path / "orders.route").write_text(ORDERS.replace('folder "inbox"', 'folder env "INBOX"'))
    monkeypatch.delenv("INBOX", raising=False)
    assert main(["run", str(tmp_path), "--check"]) == 1
    assert "ENV001 error: environment variable 'INBOX' is not set" in capsys.readouterr().out
    assert main(["run", str(tmp_path), "--watch", "--once"]) == 2
