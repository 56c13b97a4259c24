"""Starts every route of a plan on shared services and waits for them (or for a stop request)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio

from crossdock.engine.plan import Plan
from crossdock.engine.runtime import RouteRunner
from crossdock.engine.services import Services
from crossdock.engine.stats import EngineStats
from crossdock.engine.stores.base import Stores
from crossdock.engine.stores.edi import open_edi_stores
from crossdock.engine.stores.sqlite import open_sqlite_stores

STORE_FILE = "crossdock.db"
JOURNAL_FLUSH_SECONDS = 1.0


@asynccontextmanager
async def embedded_stores(data_dir: Path) -> AsyncIterator[Stores]:
    """The SQLite stores (idempotency, dead letters, journal, EDI control numbers) in `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    stores = await open_sqlite_stores(data_dir / STORE_FILE)
    try:
        stores.edi = await open_edi_stores(data_dir / STORE_FILE)
        yield stores
    finally:
        with anyio.CancelScope(shield=True):
            if stores.edi is not None:
                await stores.edi.close()
            await stores.close()


class Engine:
    """Runs the routes of a plan; `stats` tells what happened."""

    def __init__(self, plan: Plan, services: Services) -> None:
        self.plan = plan
        self.services = services
        self.stats = EngineStats()
        # The HTTP connector serves /openapi.json and /ready from the routes, and answers a dead-lettered
        # request-reply call with the code of its dead-letter entry.
        services.shared.setdefault("plan", plan)
        services.shared.setdefault("dead_letters", services.stores.dead_letters)
        self.runners = {
            name: RouteRunner(route, services, self.stats.route(name)) for name, route in plan.routes.items()
        }

    async def run(self, *, once: bool, stop: anyio.Event, drain_timeout: float = 30.0) -> None:
        """Run every route until drained (`once`) or until `stop` is set and in-flight work is done."""
        async with anyio.create_task_group() as flushing:
            flushing.start_soon(self._flush_journal)
            async with anyio.create_task_group() as routes:
                for runner in self.runners.values():
                    routes.start_soon(partial(runner.run, once=once, stop=stop, drain_timeout=drain_timeout))
            flushing.cancel_scope.cancel()
        await self.services.stores.journal.flush()

    async def _flush_journal(self) -> None:
        """Write journal events once a second rather than once per message.

        The journal is lineage, not part of the delivery promise: acknowledging a source never waits
        for it, so a hard crash can lose the last second of events but never an order.
        """
        while True:
            await anyio.sleep(JOURNAL_FLUSH_SECONDS)
            await self.services.stores.journal.flush()
