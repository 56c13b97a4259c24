"""The `queue` connector: an embedded, durable queue in a SQLite file; no server needed.

Features
- Sink: appends the message (body, headers with `X-Correlation-ID`) to a named queue and returns only
  once the transaction is on disk (WAL, `synchronous=FULL`). A message id sent to the same queue
  within `dedupe window` (or still waiting in it) is dropped, so a redelivery after a crash never
  makes a second copy (`dedupes_by_message_id`).
- Source: leases up to `batch` visible messages in one write transaction (`BEGIN IMMEDIATE`), so two
  consumers, in one process or several, never get the same message. A lease lasts `lease`; every poll
  renews the leases of the messages this source still holds. `ack(outcome)` deletes the message (a
  dead-lettered one too: the runtime stored it in the dead-letter store first); `release()` makes it
  visible again at once. When a consumer dies, its leases expire and the messages are delivered again,
  with `meta["deliveries"]` counting the attempts.
- Every route naming the same `database` file shares its queues; :class:`QueueDatabase` is also the
  small API for tests, the demo summary and the `crossdock` CLI (`depth`, `queues`, `peek`).

Options (on the connection or on the step)
    database        the SQLite file, default `<data dir>/queues.db`
    queue           the queue's name (required)
    check every     source: how often to look when the queue is empty, default 1s
    lease           source: how long a taken message stays invisible to other consumers, default 60s
    batch           source: how many messages to take per look, default 50
    dedupe window   sink: how long a sent message id is remembered, default 1 day

Lease times come from the connector context's clock, so tests drive expiry with a ManualClock.
SQLite errors are classified as in :mod:`crossdock.engine.stores.sqlite` (SQL001 transient, SQL002
permanent); QUE001 is a body that is not bytes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Self

from crossdock.connectors.base import Capabilities, ConnectorContext, ConnectorSpec
from crossdock.dsl.options import OptionSpec, OptionType, Role
from crossdock.engine.clock import Clock
from crossdock.engine.errors import PermanentError
from crossdock.engine.message import CORRELATION_HEADER, Inbound, Message, Outcome
from crossdock.engine.stores.sqlite import SQLiteFile, dumps, loads, transaction

_SOURCE = frozenset({Role.SOURCE})
_SINK = frozenset({Role.SINK})

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("database", OptionType.STRING,
               "The SQLite file holding the queues; routes naming the same file share its queues "
               "(default: queues.db in the data folder).",
               example='"data/queues.db"'),
    OptionSpec("queue", OptionType.STRING, "The name of the queue to send to or take from.",
               example='"dal-orders"', required=True),
    OptionSpec("check every", OptionType.DURATION, "How often to look for messages when the queue is empty.",
               default=1.0, example="5s", roles=_SOURCE),
    OptionSpec("lease", OptionType.DURATION,
               "How long a taken message stays invisible to other consumers before it is delivered again "
               "if this one does not acknowledge it (renewed while the message is held).",
               default=60.0, example="5m", roles=_SOURCE),
    OptionSpec("batch", OptionType.INTEGER, "How many messages to take per look.",
               default=50, example="100", roles=_SOURCE),
    OptionSpec("dedupe window", OptionType.DURATION,
               "How long a sent message id is remembered, so that sending the same message again "
               "(a redelivery after a crash) adds no second copy.",
               default=86_400.0, example="7 days", roles=_SINK),
)

SPEC = ConnectorSpec(
    kind="queue",
    description="An embedded durable queue in a SQLite file, for decoupling routes without a broker.",
    roles=frozenset({Role.SOURCE, Role.SINK}),
    options=OPTIONS,
    connection="optional",
    capabilities=Capabilities(supports_confirm=True, dedupes_by_message_id=True),
)

QUEUE_COMPONENT = "queue"
QUEUE_SCHEMA_VERSION = 1
DEFAULT_DATABASE_NAME = "queues.db"

_SCHEMA = (
    """CREATE TABLE queue_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        message_id TEXT NOT NULL,
        body BLOB NOT NULL,
        headers TEXT NOT NULL,
        enqueued_at REAL NOT NULL,
        lease_until REAL,
        deliveries INTEGER NOT NULL DEFAULT 0,
        UNIQUE (queue, message_id)
    )""",
    "CREATE INDEX queue_messages_by_queue ON queue_messages (queue, seq)",
    """CREATE TABLE queue_sent (
        queue TEXT NOT NULL,
        message_id TEXT NOT NULL,
        forget_at REAL NOT NULL,
        PRIMARY KEY (queue, message_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX queue_sent_by_expiry ON queue_sent (forget_at)",
)


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message waiting in a queue (leased or not)."""

    seq: int
    queue: str
    message_id: str
    body: bytes
    headers: dict[str, str]
    enqueued_at: float
    lease_until: float | None
    deliveries: int

    @property
    def correlation_id(self) -> str | None:
        return self.headers.get(CORRELATION_HEADER)


def _queued(row: sqlite3.Row) -> QueuedMessage:
    return QueuedMessage(seq=row["seq"], queue=row["queue"], message_id=row["message_id"],
                         body=bytes(row["body"]), headers=loads(row["headers"]),
                         enqueued_at=row["enqueued_at"], lease_until=row["lease_until"],
                         deliveries=row["deliveries"])


def _enqueue(queue: str, message_id: str, body: bytes, headers: str, now: float, forget_at: float,
             conn: sqlite3.Connection) -> bool:
    with transaction(conn):
        conn.execute("DELETE FROM queue_sent WHERE forget_at <= ?", (now,))
        if conn.execute("SELECT 1 FROM queue_sent WHERE queue = ? AND message_id = ?",
                        (queue, message_id)).fetchone():
            return False
        conn.execute("INSERT INTO queue_sent (queue, message_id, forget_at) VALUES (?, ?, ?)",
                     (queue, message_id, forget_at))
        inserted = conn.execute(
            "INSERT OR IGNORE INTO queue_messages (queue, message_id, body, headers, enqueued_at) "
            "VALUES (?, ?, ?, ?, ?)", (queue, message_id, body, headers, now)).rowcount
    return inserted == 1


def _lease(queue: str, now: float, until: float, limit: int, renew: Collection[int],
           conn: sqlite3.Connection) -> list[QueuedMessage]:
    with transaction(conn):
        # Renewing first also hides the held messages from the select below.
        conn.executemany("UPDATE queue_messages SET lease_until = ? WHERE seq = ?",
                         [(until, seq) for seq in renew])
        rows = conn.execute(
            "SELECT * FROM queue_messages WHERE queue = ? AND (lease_until IS NULL OR lease_until <= ?) "
            "ORDER BY seq LIMIT ?", (queue, now, limit)).fetchall()
        conn.executemany(
            "UPDATE queue_messages SET lease_until = ?, deliveries = deliveries + 1 WHERE seq = ?",
            [(until, row["seq"]) for row in rows])
    return [replace(_queued(row), lease_until=until, deliveries=row["deliveries"] + 1) for row in rows]


def _execute(sql: str, params: tuple[Any, ...], conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute(sql, params)


class QueueDatabase(SQLiteFile):
    """A queue database file: what the connector uses, plus `depth`, `queues` and `peek` for people.

    Use as `async with QueueDatabase(path) as db:`, or `await db.open()` ... `await db.close()`.
    """

    component = QUEUE_COMPONENT
    version = QUEUE_SCHEMA_VERSION
    schema = _SCHEMA
    what = "queue database"

    async def enqueue(self, queue: str, message_id: str, body: bytes, headers: Mapping[str, str], *,
                      now: float, dedupe_window: float) -> bool:
        """Append a message; False when that id was sent within the window or is still queued."""
        work = partial(_enqueue, queue, message_id, body, dumps(dict(headers)), now, now + dedupe_window)
        return await self.database.run(work)

    async def lease(self, queue: str, *, now: float, lease_seconds: float, limit: int,
                    renew: Collection[int] = ()) -> list[QueuedMessage]:
        """Take up to `limit` visible messages, oldest first, until `now + lease_seconds`; the messages
        numbered in `renew` (held by the caller) get the same new lease."""
        return await self.database.run(partial(_lease, queue, now, now + lease_seconds, limit, tuple(renew)))

    async def delete(self, seq: int) -> None:
        """Remove a message for good (it was acknowledged)."""
        await self.database.run(partial(_execute, "DELETE FROM queue_messages WHERE seq = ?", (seq,)))

    async def release(self, seq: int) -> None:
        """Make a leased message visible again now."""
        await self.database.run(
            partial(_execute, "UPDATE queue_messages SET lease_until = NULL WHERE seq = ?", (seq,)))

    async def depth(self, queue: str) -> int:
        """How many messages the queue holds, leased ones included."""
        return await self.database.run(lambda conn: conn.execute(
            "SELECT COUNT(*) FROM queue_messages WHERE queue = ?", (queue,)).fetchone()[0])

    async def queues(self) -> dict[str, int]:
        """Every non-empty queue and its depth."""
        rows = await self.database.run(lambda conn: conn.execute(
            "SELECT queue, COUNT(*) FROM queue_messages GROUP BY queue ORDER BY queue").fetchall())
        return {queue: count for queue, count in rows}

    async def peek(self, queue: str, limit: int = 10) -> list[QueuedMessage]:
        """The oldest messages of a queue, without leasing them."""
        rows = await self.database.run(lambda conn: conn.execute(
            "SELECT * FROM queue_messages WHERE queue = ? ORDER BY seq LIMIT ?", (queue, limit)).fetchall())
        return [_queued(row) for row in rows]


def _database_path(options: Mapping[str, Any], context: ConnectorContext) -> Path:
    configured = options.get("database")
    return context.resolve_path(str(configured)) if configured else context.data_dir / DEFAULT_DATABASE_NAME


def _option(options: Mapping[str, Any], key: str) -> Any:
    """The option's value, or its declared default when the runtime left it out."""
    if key in options:
        return options[key]
    return next(spec.default for spec in OPTIONS if spec.key == key)


def _with_correlation(message: Message) -> dict[str, str]:
    headers = {k: v for k, v in message.headers.items() if k.lower() != CORRELATION_HEADER.lower()}
    headers[CORRELATION_HEADER] = message.correlation_id
    return headers


class QueueSink:
    """Appends messages to one queue; see the module docstring."""

    def __init__(self, path: Path, queue: str, dedupe_window: float, clock: Clock) -> None:
        self.queue = queue
        self._db = QueueDatabase(path)
        self._dedupe_window = dedupe_window
        self._clock = clock

    async def __aenter__(self) -> Self:
        await self._db.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._db.close()

    async def send(self, message: Message) -> None:
        """Append the message unless its id is already known; returns once it is on disk."""
        if not isinstance(message.body, bytes | bytearray):
            raise PermanentError(
                f"queue sink needs an encoded body (bytes), got {type(message.body).__name__}", code="QUE001")
        await self._db.enqueue(self.queue, message.message_id, bytes(message.body),
                               _with_correlation(message), now=self._clock.now(),
                               dedupe_window=self._dedupe_window)


class QueueSource:
    """Leases messages from one queue; see the module docstring."""

    def __init__(self, path: Path, queue: str, *, check_every: float, lease: float, batch: int,
                 clock: Clock) -> None:
        self.queue = queue
        self._db = QueueDatabase(path)
        self._check_every = check_every
        self._lease = lease
        self._batch = batch
        self._clock = clock
        self._held: set[int] = set()

    async def __aenter__(self) -> Self:
        await self._db.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Messages still held keep their lease and come back when it expires.
        await self._db.close()

    async def receive(self, *, once: bool) -> AsyncIterator[Inbound]:
        """Yield messages oldest first; with `once`, until the queue shows nothing visible, then stop."""
        while True:
            taken = await self._db.lease(self.queue, now=self._clock.now(), lease_seconds=self._lease,
                                         limit=self._batch, renew=self._held)
            for item in taken:
                self._held.add(item.seq)
                yield self._inbound(item)
            if not taken:
                if once:
                    return
                await self._clock.sleep(self._check_every)

    def _inbound(self, item: QueuedMessage) -> Inbound:
        return Inbound(
            body=item.body,
            message_id=item.message_id,
            headers=dict(item.headers),
            meta={"queue": item.queue, "deliveries": item.deliveries, "enqueued_at": item.enqueued_at},
            ack=partial(self._ack, item.seq),
            release=partial(self._release, item.seq),
        )

    async def _ack(self, seq: int, outcome: Outcome) -> None:
        # Every outcome deletes: a dead-lettered message is already in the dead-letter store. If the delete
        # fails the lease is no longer renewed, so the message comes back once instead of staying stuck.
        try:
            await self._db.delete(seq)
        finally:
            self._held.discard(seq)

    async def _release(self, seq: int) -> None:
        try:
            await self._db.release(seq)
        finally:
            self._held.discard(seq)


def open_source(options: Mapping[str, Any], context: ConnectorContext) -> QueueSource:
    """A queue source for resolved `options` (keys as in :data:`OPTIONS`)."""
    return QueueSource(
        _database_path(options, context), str(options["queue"]),
        check_every=float(_option(options, "check_every")), lease=float(_option(options, "lease")),
        batch=int(_option(options, "batch")), clock=context.clock,
    )


def open_sink(options: Mapping[str, Any], context: ConnectorContext) -> QueueSink:
    """A queue sink for resolved `options` (keys as in :data:`OPTIONS`)."""
    return QueueSink(_database_path(options, context), str(options["queue"]),
                     float(_option(options, "dedupe_window")), context.clock)
