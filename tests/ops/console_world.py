"""A running daemon for the console tests: a real Engine on embedded stores (reloading edited route
files, as `crossdock run --watch` does), its console on uvicorn.

Two routes: "Web orders" takes JSON orders from a folder, maps them and sends them to an ERP
stand-in (tests/ops/console_sink.py) that refuses PO-3 and PO-4 (ERP422); a truncated file is
dead-lettered by the JSON reader. "Marketplace feed" cannot start: its partner is down (MKT503).
The console is served over real HTTP on 127.0.0.1 with the admin credentials below, on its own or
on the admin port.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import console_sink
import uvicorn

from crossdock.connectors import base as connectors
from crossdock.dsl.lint import lint
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.services import Services
from crossdock.engine.stores.base import DeadLetter, Stores
from crossdock.ops.admin import AdminApp, AdminCredentials, serving
from crossdock.ops.console import ConsoleContext, console_app
from crossdock.ops.reload import RouteWatcher

ADMIN_USER = "admin"
ADMIN_PASSWORD = "s3cret-for-tests"
XSS_NAME = "<script>alert('pwned')</script>"

ROUTES = """
connection "inbox" is file
  folder "inbox"
  files "*.json"
  settle 0s
  check every 100ms
end

connection "market-inbox" is file
  folder "market"
  files "*.json"
  settle 0s
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

route "Web orders"
  from file "inbox"
  read json
  map with "Order in"
  skip duplicates by po_number for 30 days
  to console channel "erp"
  dead letter to store
end

route "Marketplace feed"
  from file "market-inbox"
  read json
  to console channel "marketplace"
  dead letter to store
end
"""


def order(po: str, name: str = "Acme Hardware") -> bytes:
    """A web order as the inbox receives it."""
    return json.dumps({"po": po, "name": name, "warehouse": "DAL", "items": [{"sku": "A-1", "qty": "2"}]}).encode()


INBOX = {
    "1-po1.json": order("PO-1"),
    "2-po2.json": order("PO-2"),
    "3-po3.json": order("PO-3"),
    "4-po4.json": order("PO-4", XSS_NAME),
    "5-broken.json": b'{"po": "PO-5", "name": "Acme", "items": [',
}


@dataclass
class World:
    """What a test sees: the console's address, the engine, its stores and what the ERP received."""

    url: str
    engine: Engine
    stores: Stores
    context: ConsoleContext
    data: Path
    routes: Path

    def drop(self, name: str, body: bytes) -> None:
        """Put a file in the web orders' inbox (the route takes it within 100 ms)."""
        (self.data / "inbox" / name).write_bytes(body)

    @property
    def erp(self) -> list[str]:
        """PO numbers the ERP stand-in accepted, in order."""
        return [json.loads(m.body)["po_number"] for m in console_sink.RECEIVED.get("erp", [])]

    async def dead_letter(self, po_or_code: str) -> DeadLetter:
        """The one dead letter with this business key, or else with this error code."""
        entries = await self.stores.dead_letters.list(limit=100)
        matching = [e for e in entries if po_or_code in (e.business_key, e.code)]
        assert len(matching) == 1, [(e.business_key, e.code) for e in entries]
        return matching[0]


@contextmanager
def _registered_sink() -> Generator[None, None, None]:
    connectors._REGISTRY["console"] = "console_sink"
    console_sink.reset()
    console_sink.REFUSED.update({"PO-3", "PO-4"})
    console_sink.OFFLINE.add("marketplace")
    try:
        yield
    finally:
        del connectors._REGISTRY["console"]
        console_sink.reset()


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # pytest owns the process's signals.
        yield


@asynccontextmanager
async def running_console(tmp_path: Path, *, admin_port: bool = False, sample_every: float = 0.2,
                          samples: int = 120) -> AsyncIterator[World]:
    """The daemon with both routes running, every inbox file processed, and its console served: on its
    own, or with `admin_port` mounted in the admin app as `crossdock run --admin` serves it. The rate
    charts sample every `sample_every` seconds and show the last `samples` samples."""
    with _registered_sink():
        routes = tmp_path / "routes"
        routes.mkdir()
        (routes / "shop.route").write_text(ROUTES)
        data = tmp_path / "data"
        (data / "inbox").mkdir(parents=True)
        for name, body in INBOX.items():
            (data / "inbox" / name).write_bytes(body)
        result = lint([routes])
        assert not result.errors, [str(d) for d in result.errors]
        assert result.plan is not None
        async with embedded_stores(data) as stores, anyio.create_task_group() as group:
            engine = Engine(result.plan, Services(stores=stores, data_dir=data))
            assert result.project is not None
            watcher = RouteWatcher([routes], engine, result.project, interval=0.1)  # as `crossdock run --watch`
            stop = anyio.Event()
            group.start_soon(lambda: engine.run(once=False, stop=stop, drain_timeout=5, watch=watcher.run))
            await _processed(engine, len(INBOX))
            credentials = AdminCredentials(ADMIN_USER, ADMIN_PASSWORD)
            context = ConsoleContext.of(engine, credentials)
            context.sampler.interval, context.sampler.keep = sample_every, samples
            served = _on_admin_port(engine, credentials, context) if admin_port else _alone(context)
            try:
                async with served as url:
                    yield World(url, engine, stores, context, data, routes)
            finally:
                stop.set()


@asynccontextmanager
async def _alone(context: ConsoleContext) -> AsyncIterator[str]:
    """The console app on a uvicorn server of its own (its lifespan runs the sampler); yields its URL."""
    sock = socket.create_server(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(console_app(context), lifespan="on", log_level="warning", access_log=False))
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True


@asynccontextmanager
async def _on_admin_port(engine: Engine, credentials: AdminCredentials, context: ConsoleContext,
                         ) -> AsyncIterator[str]:
    """As `crossdock run --admin` serves it: mounted at / in the admin app, the sampler run by the host."""
    admin = AdminApp(engine, credentials)
    admin.mount("/", console_app(context))
    async with serving(admin.app, "127.0.0.1:0") as (host, port), anyio.create_task_group() as group:
        group.start_soon(context.sampler.run)
        yield f"http://{host}:{port}"
        group.cancel_scope.cancel()


async def _processed(engine: Engine, files: int) -> None:
    stats = engine.stats.route("Web orders")
    with anyio.fail_after(20):
        while stats.acked < files:
            await anyio.sleep(0.05)
