"""The embedded journal: what happened to each message, in the stores' SQLite file.

Layout: a row of ``journal_stories`` holds the events of one message (correlation id) on one route
that were written in the same flush, as a JSON array. A message's four or five events usually share a
row, so a message costs one row and two index entries instead of one of each per event: the journal
was the largest cost per message of the AMQP route benchmark (four rows a message measured 48 µs of
a 133 µs engine path, a row a message about a quarter of that). A message whose events straddle
flushes has a row per flush; readers join them.

Order: events sort by time, then by flush (``batch``) and position in it, so events of the same
instant (a ManualClock in tests, a coarse clock) come back in the order they were recorded.

Buffering: events are kept in memory and written in one transaction when the buffer holds
``flush_every`` events, when :meth:`SQLiteJournal.flush` is called, before any read, and on close; the
engine flushes every second. The journal's connection runs ``synchronous=NORMAL``: a crash of the
process loses nothing written, a crash of the machine may lose the last events, never an order
(acknowledging a source never waits for the journal).

Business keys (lineage): ``journal_keys`` holds one row per (key, correlation id, route), written in the
same transaction as the events, so ``crossdock trace PO-123`` finds every message that carried the key
with one index lookup.

Databases written before this layout kept one row per event in the table ``journal``; opening one
moves those events into ``journal_stories`` (one row each) and their business keys into
``journal_keys``, once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial
from typing import Any

from crossdock.engine.stores.base import JournalEvent
from crossdock.engine.stores.sqlite import (
    IDS_PER_STATEMENT,
    SQLiteDatabase,
    dumps,
    ensure_schema,
    loads,
    marks,
    transaction,
    where_clause,
)

KEYS_COMPONENT = "journal_keys"
KEYS_SCHEMA_VERSION = 1
STORIES_COMPONENT = "journal_stories"
STORIES_SCHEMA_VERSION = 1

_KEYS_SCHEMA = (
    """CREATE TABLE journal_keys (
        key TEXT NOT NULL,
        correlation_id TEXT NOT NULL,
        route TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (key, correlation_id, route)
    ) WITHOUT ROWID""",
    "CREATE INDEX journal_keys_by_correlation ON journal_keys (correlation_id)",
    "CREATE INDEX journal_keys_by_at ON journal_keys (at)",
)

# an event in `events`: [position in its flush, at, event, step, message_id, business_key, detail]
_STORIES_SCHEMA = (
    """CREATE TABLE journal_stories (
        seq INTEGER PRIMARY KEY,
        batch INTEGER NOT NULL,
        route TEXT NOT NULL,
        correlation_id TEXT NOT NULL,
        first_at REAL NOT NULL,
        last_at REAL NOT NULL,
        events TEXT NOT NULL
    )""",
    "CREATE INDEX journal_stories_by_correlation ON journal_stories (correlation_id)",
    "CREATE INDEX journal_stories_by_first ON journal_stories (first_at)",
    # the events of the table `journal` of earlier versions, a row each, keeping their order
    """INSERT INTO journal_stories (seq, batch, route, correlation_id, first_at, last_at, events)
       SELECT seq, seq, route, correlation_id, at, at,
              json_array(json_array(0, at, event, step, message_id, business_key, json(detail)))
       FROM journal""",
    """INSERT OR IGNORE INTO journal_keys (key, correlation_id, route, at)
       SELECT business_key, correlation_id, route, MIN(at) FROM journal
       WHERE business_key IS NOT NULL GROUP BY business_key, correlation_id, route""",
    "DELETE FROM journal",
)

# A flush goes in as few statements as it can: sqlite3 releases the GIL around every statement it
# steps, and a worker thread that needs the GIL back while the event loop runs makes both threads
# switch (a row per statement cost 1.2 context switches a message on the AMQP route benchmark). Rows
# go in `ROWS_PER_STATEMENT` at a time as one multi-row VALUES: measured at 3-6 µs a message against
# 10-12 µs for the same rows passed as one JSON array and taken apart by json_each in SQL.
ROWS_PER_STATEMENT = 128
_STORY_COLUMNS = "INSERT INTO journal_stories (batch, route, correlation_id, first_at, last_at, events) VALUES "
_KEY_COLUMNS = "INSERT OR IGNORE INTO journal_keys (key, correlation_id, route, at) VALUES "

KeyRow = tuple[str, str, str, float]
"""(key, correlation_id, route, at) of one business key, as buffered before a flush."""


def ensure_journal_schema(conn: sqlite3.Connection, db: SQLiteDatabase) -> None:
    """Create the journal's tables when missing (moving events of the older layout into them)."""
    ensure_schema(conn, db.path, KEYS_COMPONENT, KEYS_SCHEMA_VERSION, _KEYS_SCHEMA)
    ensure_schema(conn, db.path, STORIES_COMPONENT, STORIES_SCHEMA_VERSION, _STORIES_SCHEMA)


StoryRow = tuple[str, str, float, float, str]
"""(route, correlation_id, first_at, last_at, events as JSON) of one row of ``journal_stories``."""


def _stories(events: Sequence[JournalEvent]) -> list[StoryRow]:
    """The buffered events as rows: one per (route, correlation id), events in recorded order."""
    stories: dict[tuple[str, str], list[list[Any]]] = {}
    for n, e in enumerate(events):
        item = [n, e.at, e.event, e.step, e.message_id, e.business_key, e.detail]
        story = stories.get((e.route, e.correlation_id))
        if story is None:
            stories[(e.route, e.correlation_id)] = [item]
        else:
            story.append(item)
    return [(route, correlation_id, min(item[1] for item in items), max(item[1] for item in items), dumps(items))
            for (route, correlation_id), items in stories.items()]


def _insert(conn: sqlite3.Connection, columns: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert `rows` with `columns` (an INSERT up to VALUES), :data:`ROWS_PER_STATEMENT` a statement."""
    if not rows:
        return
    row_marks = f"({marks(rows[0])})"
    full = columns + ", ".join([row_marks] * ROWS_PER_STATEMENT)
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start:start + ROWS_PER_STATEMENT]
        sql = full if len(chunk) == ROWS_PER_STATEMENT else columns + ", ".join([row_marks] * len(chunk))
        conn.execute(sql, [value for row in chunk for value in row])


def _write(stories: Sequence[StoryRow], keys: Sequence[KeyRow], conn: sqlite3.Connection) -> None:
    with transaction(conn):
        # the flush's number: one above every row written before, so later flushes sort later
        batch = conn.execute("SELECT IFNULL(MAX(seq), 0) + 1 FROM journal_stories").fetchone()[0]
        _insert(conn, _STORY_COLUMNS, [(batch, *story) for story in stories])
        _insert(conn, _KEY_COLUMNS, keys)


def _expand(rows: Sequence[sqlite3.Row]) -> list[tuple[tuple[float, int, int], JournalEvent]]:
    """The events of `rows`, each with its sort key (at, batch, position)."""
    out = []
    for row in rows:
        route, correlation_id, batch = row["route"], row["correlation_id"], row["batch"]
        for n, at, event, step, message_id, business_key, detail in loads(row["events"]):
            out.append(((at, batch, n), JournalEvent(
                at=at, route=route, correlation_id=correlation_id, message_id=message_id, event=event,
                step=step, business_key=business_key, detail=detail)))
    return out


def _prune(before: float, conn: sqlite3.Connection) -> int:
    """Delete events older than `before`; a row holding older and newer events keeps the newer."""
    with transaction(conn):
        # `first_at < ?` as well, which every such row meets, lets the index on first_at find them
        old = "FROM journal_stories WHERE first_at < ? AND last_at < ?"
        deleted = conn.execute(f"SELECT IFNULL(SUM(json_array_length(events)), 0) {old}",
                               (before, before)).fetchone()[0]
        conn.execute(f"DELETE {old}", (before, before))
        straddling = conn.execute("SELECT seq, events FROM journal_stories WHERE first_at < ?",
                                  (before,)).fetchall()
        for seq, text in straddling:
            items = loads(text)
            kept = [item for item in items if item[1] >= before]
            deleted += len(items) - len(kept)
            conn.execute("UPDATE journal_stories SET events = ?, first_at = ? WHERE seq = ?",
                         (dumps(kept), min(item[1] for item in kept), seq))
        # A key recorded long ago stays while its message has any event left, so a story that is still
        # going on (a retried delivery, a later acknowledgment) is found by its key until all of it ages out.
        conn.execute("DELETE FROM journal_keys WHERE at < ? AND NOT EXISTS (SELECT 1 FROM journal_stories s "
                     "WHERE s.correlation_id = journal_keys.correlation_id)", (before,))
    return int(deleted)


class SQLiteJournal:
    """:class:`~crossdock.engine.stores.base.Journal` on ``journal_stories`` (see the module)."""

    def __init__(self, db: SQLiteDatabase, *, flush_every: int = 1024) -> None:
        self._db = db
        self._flush_every = flush_every
        self._buffer: list[JournalEvent] = []
        self._keys: list[KeyRow] = []

    async def record(self, event: JournalEvent) -> None:
        self._buffer.append(event)
        if len(self._buffer) >= self._flush_every:
            await self.flush()

    async def record_keys(self, *, at: float, route: str, correlation_id: str, keys: Sequence[str]) -> None:
        self._keys.extend((key, correlation_id, route, at) for key in keys)
        if len(self._keys) >= self._flush_every:
            await self.flush()

    async def flush(self) -> None:
        if not self._buffer and not self._keys:
            return
        batch, self._buffer = self._buffer, []
        keys, self._keys = self._keys, []
        try:
            await self._db.run(partial(_write, _stories(batch), keys))
        except BaseException:
            # Put the batch back in front of anything recorded meanwhile, so a later flush keeps the order.
            self._buffer[:0] = batch
            self._keys[:0] = keys
            raise

    async def events(
        self,
        *,
        correlation_id: str | None = None,
        correlation_ids: Sequence[str] | None = None,
        business_key: str | None = None,
        route: str | None = None,
        limit: int = 1000,
    ) -> list[JournalEvent]:
        await self.flush()
        where, params = where_clause([("correlation_id = ?", correlation_id), ("route = ?", route),
                                # a cheap pre-filter; the event's own key is checked below
                                ("instr(events, ?) > 0", None if business_key is None else dumps(business_key))])
        if correlation_ids is not None:
            ids = list(dict.fromkeys(correlation_ids))[:IDS_PER_STATEMENT]
            where += (" AND " if where else " WHERE ") + f"correlation_id IN ({marks(ids)})"
            params += ids
        # every row holds at least one event no older than its first, so the first `limit` rows by
        # first_at hold the `limit` oldest events
        sql = f"SELECT route, correlation_id, batch, events FROM journal_stories{where} ORDER BY first_at, seq LIMIT ?"
        rows = await self._db.run(lambda conn: conn.execute(sql, [*params, limit]).fetchall())
        found = sorted(_expand(rows), key=lambda pair: pair[0])
        return [event for _, event in found
                if business_key is None or event.business_key == business_key][:limit]

    async def find_key(self, key: str, *, limit: int = 1000) -> list[str]:
        await self.flush()
        sql = ("SELECT correlation_id, MIN(at) AS first FROM journal_keys WHERE key = ? "
               "GROUP BY correlation_id ORDER BY first, correlation_id LIMIT ?")
        rows = await self._db.run(lambda conn: conn.execute(sql, (key, limit)).fetchall())
        return [row[0] for row in rows]

    async def keys_of(self, correlation_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        await self.flush()
        ids = list(dict.fromkeys(correlation_ids))[:IDS_PER_STATEMENT]
        sql = (f"SELECT correlation_id, route, key FROM journal_keys WHERE correlation_id IN ({marks(ids)}) "
               "ORDER BY at, key")
        rows = await self._db.run(lambda conn: conn.execute(sql, ids).fetchall())
        return [(row[0], row[1], row[2]) for row in rows]

    async def counts(self, *, since: float | None = None) -> dict[str, dict[str, int]]:
        await self.flush()
        where, params = where_clause([("s.last_at >= ?", since), ("json_extract(e.value, '$[1]') >= ?", since)])
        sql = (f"SELECT s.route, json_extract(e.value, '$[2]'), COUNT(*) FROM journal_stories s, "
               f"json_each(s.events) e{where} GROUP BY 1, 2")
        rows = await self._db.run(lambda conn: conn.execute(sql, params).fetchall())
        out: dict[str, dict[str, int]] = {}
        for route, event, count in rows:
            out.setdefault(route, {})[event] = count
        return out

    async def prune(self, before: float) -> int:
        await self.flush()
        return await self._db.run(partial(_prune, before))
