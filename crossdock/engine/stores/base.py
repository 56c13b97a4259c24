"""What the runtime keeps besides messages: dead letters, idempotency keys and the journal.

Each store is a small async Protocol so that the embedded SQLite implementation (dead letters and
idempotency keys in :mod:`crossdock.engine.stores.sqlite`, the journal in
:mod:`crossdock.engine.stores.journal`, opened together by :mod:`crossdock.engine.stores.embedded`)
and a shared PostgreSQL one can stand behind the same runtime.
All times are epoch seconds (floats) taken from the runtime's clock and passed in, so stores never
read the wall clock themselves and tests drive expiry with a ManualClock.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(kw_only=True)
class DeadLetter:
    """A message the runtime gave up on, with everything needed to understand and replay it.

    `payload` is the original source bytes; `stage_payload` the encoded message at the failing sink
    (None when the failure happened before a sink). `step` is for people (`to queue "warehouse-queues"`),
    `step_path` for machines (`"3/when0/1"`). `attempts` holds one `{"attempt", "at", "error"}` dict per try.
    """

    route: str
    step: str
    step_path: str
    correlation_id: str
    message_id: str
    payload: bytes
    error: dict[str, Any]
    created_at: float
    id: str = field(default_factory=_new_id)
    idempotency_key: str | None = None
    business_key: str | None = None
    stage_payload: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    error_chain: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    replayed_at: float | None = None
    replay_count: int = 0

    @property
    def code(self) -> str | None:
        """The stable code of the last error (`T000`, `V001`...), used to filter listings."""
        code = self.error.get("code")
        return str(code) if code is not None else None


@dataclass(kw_only=True, slots=True)
class JournalEvent:
    """One thing that happened to a message: received, decoded, mapped, delivered, retried, dead-lettered,
    filtered, duplicate, acked... `step` names the step for step-level events; `detail` is JSON-able."""

    at: float
    route: str
    correlation_id: str
    message_id: str
    event: str
    step: str | None = None
    business_key: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class DeadLetterStore(Protocol):
    """Where messages go when retries are spent or the error is permanent."""

    async def put(self, entry: DeadLetter) -> str:
        """Store durably (the source is acked right after) and return the entry's id."""
        ...

    async def get(self, id: str) -> DeadLetter | None:
        """The entry with this id, or None."""
        ...

    async def list(
        self,
        *,
        route: str | None = None,
        code: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[DeadLetter]:
        """Entries newest first, filtered by route, last error code and `since <= created_at < until`."""
        ...

    async def count(self, route: str | None = None) -> int:
        """How many entries (of one route, or all)."""
        ...

    async def oldest_created_at(self) -> float | None:
        """When the oldest entry was stored (for an age alert), or None when there is none."""
        ...

    async def mark_replayed(self, id: str, at: float) -> None:
        """Note a replay: sets `replayed_at` and counts it in `replay_count`."""
        ...

    async def delete(self, ids: Sequence[str]) -> int:
        """Delete these entries; returns how many existed."""
        ...

    async def purge(self, *, route: str | None = None, before: float | None = None) -> int:
        """Delete every entry matching the filters (all of them when none is given); returns the count."""
        ...


class IdempotencyStore(Protocol):
    """Keys of messages already delivered, each remembered for a while (`skip duplicates ... for 90 days`)."""

    async def seen(self, scope: str, key: str, now: float) -> bool:
        """True when `key` was recorded in `scope` and has not expired at `now`."""
        ...

    async def record(self, scope: str, key: str, ttl_seconds: float, now: float) -> None:
        """Remember `key` until `now + ttl_seconds`; recording it again never shortens that."""
        ...

    async def expire(self, now: float) -> int:
        """Forget every key expired at `now`; returns how many."""
        ...


class Journal(Protocol):
    """The trail of what happened to each message, for `crossdock trace` and the console's counters."""

    async def record(self, event: JournalEvent) -> None:
        """Add an event; implementations may buffer it until :meth:`flush`."""
        ...

    async def flush(self) -> None:
        """Make every recorded event durable; the runtime calls it before acknowledging a source."""
        ...

    async def record_keys(self, *, at: float, route: str, correlation_id: str, keys: Sequence[str]) -> None:
        """Note that the message `correlation_id` of `route` carries these business keys (`track by`,
        `skip duplicates by`); buffered like events. Recording a key twice keeps the first time."""
        ...

    async def events(
        self,
        *,
        correlation_id: str | None = None,
        correlation_ids: Sequence[str] | None = None,
        business_key: str | None = None,
        route: str | None = None,
        limit: int = 1000,
    ) -> list[JournalEvent]:
        """Matching events, oldest first (events of the same instant in the order they were recorded)."""
        ...

    async def find_key(self, key: str, *, limit: int = 1000) -> list[str]:
        """The correlation ids of messages that carried exactly this business key, oldest first."""
        ...

    async def keys_of(self, correlation_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        """`(correlation_id, route, key)` for every key recorded for these correlation ids."""
        ...

    async def counts(self, *, since: float | None = None) -> dict[str, dict[str, int]]:
        """Event counts per route and event name, for events at or after `since`."""
        ...

    async def prune(self, before: float) -> int:
        """Delete events older than `before`, and keys older than that whose message has no event left;
        returns how many events."""
        ...


async def _nothing() -> None:
    return None


@dataclass
class Stores:
    """The three stores a runtime uses, closed together.

    Use as `async with stores:` or call :meth:`close`; closing flushes the journal first.
    """

    dead_letters: DeadLetterStore
    idempotency: IdempotencyStore
    journal: Journal
    on_close: Callable[[], Awaitable[None]] = _nothing
    edi: Any = None
    """Control numbers and the sent log (crossdock.engine.stores.edi.EdiStores) when EDI is in use."""
    _closed: bool = field(default=False, init=False, repr=False)

    async def close(self) -> None:
        """Flush the journal and release the backing resources; calling it twice is harmless."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.journal.flush()
        finally:
            await self.on_close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
