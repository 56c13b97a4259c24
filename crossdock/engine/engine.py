"""Starts every route of a plan on shared services, keeps the journal, and swaps in a new plan.

Each route runs in a task of its own with its own stop event, so :meth:`Engine.apply` can stop one
route (its source stops receiving, what it holds is finished and acknowledged) and start its new
version while every other route keeps running. `crossdock run --watch` reloads edited route files
that way (:mod:`crossdock.ops.reload`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from crossdock.connectors.base import SWAPPING_KEY, SharedResource
from crossdock.engine.plan import Plan
from crossdock.engine.runtime import RouteRunner
from crossdock.engine.services import Services
from crossdock.engine.stats import EngineStats
from crossdock.engine.stores.base import Stores
from crossdock.engine.stores.edi import open_edi_stores
from crossdock.engine.stores.embedded import open_sqlite_stores
from crossdock.ops.telemetry import Telemetry

if TYPE_CHECKING:
    from crossdock.ops.reload import ReloadStatus

STORE_FILE = "crossdock.db"
JOURNAL_FLUSH_SECONDS = 1.0
DEFAULT_JOURNAL_RETENTION = 30 * 86400.0
JOURNAL_PRUNE_SECONDS = 3600.0
SWAP_OPEN_TIMEOUT = 30.0
"""How long a reload waits for its new routes to open before shared resources nobody took are closed."""

Watch = Callable[[anyio.Event], Awaitable[None]]
"""A task run next to the routes until the engine stops (`crossdock run --watch`: the route watcher)."""

log = logging.getLogger("crossdock.engine")


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


@dataclass
class RouteChanges:
    """What a new plan did to the running routes (names)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass
class _Running:
    """A route's runner with the event that stops it and the one set once it has finished."""

    runner: RouteRunner
    stop: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)


class Engine:
    """Runs the routes of a plan; `stats` tells what happened.

    `journal_retention` (seconds, None to keep everything): journal events older than that, and the
    business keys of messages that have no event left, are deleted when the engine starts and every
    hour while it runs.
    """

    def __init__(self, plan: Plan, services: Services, *,
                 journal_retention: float | None = DEFAULT_JOURNAL_RETENTION) -> None:
        self.plan = plan
        self.services = services
        self.stats = EngineStats()
        self.journal_retention = journal_retention
        self.reload_status: ReloadStatus | None = None
        """The last reload's outcome, set by the route watcher (None until the first reload)."""
        # The HTTP connector serves /openapi.json and /ready from the routes, and answers a dead-lettered
        # request-reply call with the code of its dead-letter entry.
        services.shared.setdefault("plan", plan)
        services.shared.setdefault("dead_letters", services.stores.dead_letters)
        # Every runner, reloaded ones too, reports to the engine's logs, metrics and traces.
        self.telemetry = Telemetry(self)
        services.observer = self.telemetry
        self.runners = {
            name: RouteRunner(route, services, self.stats.route(name)) for name, route in plan.routes.items()
        }
        self._running: dict[str, _Running] = {}
        self._group: TaskGroup | None = None
        self._swapping: anyio.Lock | None = None
        self._stopping = False
        self._once = False
        self._drain_timeout = 30.0

    async def run(self, *, once: bool, stop: anyio.Event, drain_timeout: float = 30.0,
                  watch: Watch | None = None) -> None:
        """Run every route until drained (`once`) or until `stop` is set and in-flight work is done.

        With `watch`, the engine runs until `stop` even when no route is left (a later reload may add
        some), and `watch(stop)` runs beside the routes.
        """
        self._once, self._drain_timeout, self._stopping = once, drain_timeout, False
        self._swapping = anyio.Lock()
        await self.prune_journal()
        async with anyio.create_task_group() as background:
            background.start_soon(self._flush_journal)
            if self.journal_retention is not None:
                background.start_soon(self._keep_journal)
            async with anyio.create_task_group() as routes:
                self._group = routes
                for name in self.runners:
                    self._start(name)
                routes.start_soon(self._stop_routes, stop)
                if watch is not None:
                    routes.start_soon(watch, stop)
                    await stop.wait()
                await self._all_done()
                routes.cancel_scope.cancel()
            self._group = None
            background.cancel_scope.cancel()
        await self.services.stores.journal.flush()

    def _start(self, name: str) -> None:
        assert self._group is not None
        running = _Running(self.runners[name])
        self._running[name] = running
        self._group.start_soon(self._run_route, running)

    async def _run_route(self, running: _Running) -> None:
        try:
            await running.runner.run(once=self._once, stop=running.stop, drain_timeout=self._drain_timeout)
        finally:
            running.done.set()

    async def _stop_routes(self, stop: anyio.Event) -> None:
        await stop.wait()
        self._stopping = True
        for running in self._running.values():
            running.stop.set()

    async def _all_done(self) -> None:
        # a reload may replace runners meanwhile: look again until none is left running, and not in
        # the middle of a swap (its old routes done, its new ones not started yet)
        assert self._swapping is not None
        while True:
            while pending := [r.done for r in self._running.values() if not r.done.is_set()]:
                await pending[0].wait()
            async with self._swapping:
                if all(r.done.is_set() for r in self._running.values()):
                    return

    async def apply(self, plan: Plan, changed: Iterable[str] = ()) -> RouteChanges:
        """Swap in `plan` without losing or repeating a message.

        Routes only in `plan` start; routes no longer in it stop; routes named in `changed` (and routes
        that stopped on a failure) stop and start again from `plan`. A route stops by no longer
        receiving and finishing what it holds (acknowledged, or released after the drain timeout so
        its source offers it again), and only then does its new version start, so one message is
        never worked on by both. Every other route keeps running, untouched.
        """
        assert self._swapping is not None, "apply() is for a running engine"
        async with self._swapping:
            changes = RouteChanges(
                added=[n for n in plan.routes if n not in self.plan.routes],
                removed=[n for n in self.plan.routes if n not in plan.routes],
                changed=[n for n in plan.routes if n in self.plan.routes
                         and (n in set(changed) or self.runners[n].failure is not None)],
            )
            if self._stopping:
                return RouteChanges()
            shared = self.services.shared
            shared[SWAPPING_KEY] = True  # an HTTP port a changed route leaves stays open for its new version
            try:
                leaving = [self._running[n] for n in (*changes.removed, *changes.changed) if n in self._running]
                for running in leaving:
                    running.stop.set()
                for running in leaving:
                    await running.done.wait()
                self.plan = plan
                self.services.partners = plan.partners
                shared["plan"] = plan
                for name in changes.removed:
                    del self.runners[name]
                    self._running.pop(name, None)
                started = []
                for name in (*changes.changed, *changes.added):
                    self.runners[name] = RouteRunner(plan.routes[name], self.services, self.stats.route(name))
                    if not self._stopping:
                        self._start(name)
                        started.append(self.runners[name])
                with anyio.move_on_after(SWAP_OPEN_TIMEOUT):
                    for runner in started:
                        await runner.opened.wait()
            finally:
                shared.pop(SWAPPING_KEY, None)
                for resource in list(shared.values()):
                    if isinstance(resource, SharedResource):
                        await resource.settle()
            return changes

    def route_states(self) -> dict[str, str]:
        """Each route's state: `running`, `draining` (stopping: no longer receiving, finishing what it
        holds, for a reload or a shutdown) or `stopped` (drained, or failed: see its runner's `failure`)."""
        states: dict[str, str] = {}
        for name in self.runners:
            running = self._running.get(name)
            if running is None or running.done.is_set():
                states[name] = "stopped"
            else:
                states[name] = "draining" if running.stop.is_set() else "running"
        return states

    async def prune_journal(self) -> int:
        """Delete journal events (and keys) older than the retention; returns how many events."""
        if self.journal_retention is None:
            return 0
        pruned = await self.services.stores.journal.prune(self.services.clock.now() - self.journal_retention)
        if pruned:
            log.info("journal: %d event(s) older than %gs deleted", pruned, self.journal_retention)
        return pruned

    async def _keep_journal(self) -> None:
        while True:
            await anyio.sleep(JOURNAL_PRUNE_SECONDS)
            await self.prune_journal()

    async def _flush_journal(self) -> None:
        """Write journal events once a second rather than once per message.

        The journal is lineage, not part of the delivery promise: acknowledging a source never waits
        for it, so a hard crash can lose the last second of events but never an order.
        """
        while True:
            await anyio.sleep(JOURNAL_FLUSH_SECONDS)
            await self.services.stores.journal.flush()
