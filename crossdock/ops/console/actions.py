"""The console's write actions: replay and purge dead letters (as `crossdock dlq replay | purge` do)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from crossdock.engine.errors import CrossdockError
from crossdock.engine.message import Outcome
from crossdock.engine.runtime import RouteRunner
from crossdock.engine.stores.base import DeadLetter
from crossdock.ops.console.context import ConsoleContext

log = logging.getLogger("crossdock.console")


@dataclass(frozen=True)
class ActionResult:
    """What an action did to one entry."""

    entry_id: str
    route: str
    outcome: str
    ok: bool


async def replay(context: ConsoleContext, entries: Sequence[DeadLetter], *, from_start: bool) -> list[ActionResult]:
    """Run each entry again through its route, resuming at the failed step unless `from_start`.

    Each route gets a runner of its own with its own sinks for the replay, as `crossdock dlq replay`
    does: the live runner's sinks belong to its run and are closed when the route failed to start.
    The replay counts in the live route's counters. An entry is marked replayed once it ran, even when
    it failed again (that failure is a new entry, as on the command line).
    """
    results: list[ActionResult] = []
    by_route: dict[str, list[DeadLetter]] = {}
    for entry in entries:
        by_route.setdefault(entry.route, []).append(entry)
    for route, group in by_route.items():
        live = context.engine.runners.get(route)
        if live is None:
            results += [ActionResult(e.id, route, "kept: the route no longer exists", False) for e in group]
            continue
        async with AsyncExitStack() as stack:
            runner = RouteRunner(live.plan, context.engine.services, live.stats)
            try:
                await runner.open_sinks(stack)
            except CrossdockError as error:
                why = f"kept: the route's sinks could not open ({error.code} {error})"
                results += [ActionResult(e.id, route, why, False) for e in group]
                continue
            for entry in group:
                results.append(await _replay_one(context, runner, entry, from_start))
    return results


async def _replay_one(context: ConsoleContext, runner: RouteRunner, entry: DeadLetter,
                      from_start: bool) -> ActionResult:
    try:
        outcome = await runner.replay(entry, from_start=from_start)
    except Exception as error:  # a store failed under the replay: the entry stays, unmarked, for another try
        log.error("console: replay of dead letter %s failed: %s", entry.id, error)
        return ActionResult(entry.id, entry.route, f"kept: the replay failed ({error})", False)
    await context.stores.dead_letters.mark_replayed(entry.id, context.clock.now())
    ok = outcome is not Outcome.DEAD_LETTERED
    text = outcome.value if ok else "dead-lettered again (a new entry)"
    return ActionResult(entry.id, entry.route, text, ok)


async def purge(context: ConsoleContext, entries: Sequence[DeadLetter]) -> list[ActionResult]:
    """Delete the entries from the dead-letter store."""
    await context.stores.dead_letters.delete([e.id for e in entries])
    return [ActionResult(e.id, e.route, "purged", True) for e in entries]
