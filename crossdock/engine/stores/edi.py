"""What EDI needs to remember: control numbers per partner, and what was sent and acknowledged.

- :class:`ControlNumbers`: ISA13, GS06 and ST02 come from a durable counter per partner and kind;
  a number is committed (synchronous=FULL) before it is used, so it is never given out twice, even
  across a crash (a crash may skip one, which partners accept; reuse they do not).
- :class:`SentLog`: every functional group sent, with its sets and when its acknowledgment is due.
  A received 997/999 is reconciled against it by partner, GS06 and ST02; :meth:`SentLog.overdue`
  lists what was never acknowledged in time.

Both live in the stores database (`crossdock.db`) as their own component with its own schema version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from crossdock.engine.stores.sqlite import SQLiteDatabase, transaction

EDI_COMPONENT = "edi"
EDI_SCHEMA_VERSION = 1
MAX_CONTROL_NUMBER = 999_999_999  # ISA13 is nine digits; GS06 and ST02 are kept in the same range

_SCHEMA = (
    """CREATE TABLE edi_counters (
        partner TEXT NOT NULL,
        kind TEXT NOT NULL,
        value INTEGER NOT NULL,
        PRIMARY KEY (partner, kind)
    ) WITHOUT ROWID""",
    """CREATE TABLE edi_sent (
        partner TEXT NOT NULL,
        group_control TEXT NOT NULL,
        set_control TEXT NOT NULL,
        set_id TEXT NOT NULL,
        sent_at REAL NOT NULL,
        due_at REAL NOT NULL,
        status TEXT,
        acknowledged_at REAL,
        PRIMARY KEY (partner, group_control, set_control)
    ) WITHOUT ROWID""",
    "CREATE INDEX edi_sent_open ON edi_sent (due_at) WHERE status IS NULL",
    """CREATE TABLE edi_outbound (
        message_id TEXT PRIMARY KEY,
        payload BLOB NOT NULL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID""",
)


def _next(partner: str, kind: str, conn: sqlite3.Connection) -> int:
    with transaction(conn):
        row = conn.execute("SELECT value FROM edi_counters WHERE partner = ? AND kind = ?", (partner, kind)).fetchone()
        value = 1 if row is None or row[0] >= MAX_CONTROL_NUMBER else row[0] + 1
        conn.execute("INSERT INTO edi_counters (partner, kind, value) VALUES (?, ?, ?) "
                     "ON CONFLICT (partner, kind) DO UPDATE SET value = excluded.value", (partner, kind, value))
    return value


class ControlNumbers:
    """Durable counters: `await numbers.next("acme", "interchange")` -> 1, 2, 3..."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def next(self, partner: str, kind: str) -> int:
        """The next number of `kind` ("interchange", "group" or "set") for `partner`."""
        return await self._db.run(partial(_next, partner, kind))


@dataclass(frozen=True)
class SentSet:
    """One transaction set sent, and what became of its acknowledgment."""

    partner: str
    group_control: str
    set_control: str
    set_id: str
    sent_at: float
    due_at: float
    status: str | None
    acknowledged_at: float | None


def _record(partner: str, group_control: str, sets: Sequence[tuple[str, str]], sent_at: float, due_at: float,
            conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.executemany(
            "INSERT OR IGNORE INTO edi_sent (partner, group_control, set_control, set_id, sent_at, due_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(partner, group_control, control, set_id, sent_at, due_at) for control, set_id in sets],
        )


def _reconcile(partner: str, group_control: str, statuses: dict[str, str], group_status: str, at: float,
               conn: sqlite3.Connection) -> int:
    with transaction(conn):
        rows = conn.execute("SELECT set_control FROM edi_sent WHERE partner = ? AND group_control = ?",
                            (partner, group_control)).fetchall()
        for (control,) in rows:
            # a set the acknowledgment does not list takes the group's answer (partners omit accepted sets)
            status = statuses.get(control, group_status)
            conn.execute("UPDATE edi_sent SET status = ?, acknowledged_at = ? WHERE partner = ? AND "
                         "group_control = ? AND set_control = ?", (status, at, partner, group_control, control))
    return len(rows)


def _sent(conn: sqlite3.Connection, sql: str, params: Sequence[object]) -> list[SentSet]:
    return [SentSet(*row) for row in conn.execute(sql, params).fetchall()]


class SentLog:
    """What was sent to partners and whether it was acknowledged."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def record(self, partner: str, group_control: str, sets: Sequence[tuple[str, str]], *,
                     sent_at: float, due_at: float) -> None:
        """Remember a group sent: its sets as (ST02, ST01) pairs."""
        await self._db.run(partial(_record, partner, group_control, list(sets), sent_at, due_at))

    async def reconcile(self, partner: str, group_control: str, statuses: dict[str, str], group_status: str,
                        at: float) -> int:
        """Apply a received acknowledgment (AK5/IK5 per ST02, AK9 for the group); returns sets matched."""
        return await self._db.run(partial(_reconcile, partner, group_control, dict(statuses), group_status, at))

    async def overdue(self, now: float) -> list[SentSet]:
        """Sets whose acknowledgment is past due."""
        sql = ("SELECT partner, group_control, set_control, set_id, sent_at, due_at, status, acknowledged_at "
               "FROM edi_sent WHERE status IS NULL AND due_at <= ? ORDER BY due_at")
        return await self._db.run(lambda conn: _sent(conn, sql, (now,)))

    async def sets(self, partner: str, group_control: str) -> list[SentSet]:
        """The sets of one group sent."""
        sql = ("SELECT partner, group_control, set_control, set_id, sent_at, due_at, status, acknowledged_at "
               "FROM edi_sent WHERE partner = ? AND group_control = ? ORDER BY set_control")
        return await self._db.run(lambda conn: _sent(conn, sql, (partner, group_control)))


class Outbound:
    """Interchanges generated per outgoing message id, so a redelivery sends the very same bytes.

    Without it, a crash between building an interchange and acknowledging the source would build a
    second one with new control numbers: the partner would get the order twice under two ISA13s.
    """

    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def generated(self, message_id: str) -> bytes | None:
        """The interchange already built for `message_id`, if any."""
        sql = "SELECT payload FROM edi_outbound WHERE message_id = ?"
        row = await self._db.run(lambda conn: conn.execute(sql, (message_id,)).fetchone())
        return bytes(row[0]) if row is not None else None

    async def remember(self, message_id: str, payload: bytes, now: float) -> None:
        """Keep what was built for `message_id` (the first one stays if two race)."""
        sql = "INSERT OR IGNORE INTO edi_outbound (message_id, payload, created_at) VALUES (?, ?, ?)"

        def insert(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.execute(sql, (message_id, payload, now))

        await self._db.run(insert)


@dataclass
class EdiStores:
    """Control numbers, the sent log and built interchanges, on one connection."""

    numbers: ControlNumbers
    sent: SentLog
    outbound: Outbound
    db: SQLiteDatabase

    async def close(self) -> None:
        await self.db.close()


async def open_edi_stores(path: str | Path) -> EdiStores:
    """Open (creating when missing) the EDI tables in the stores database at `path`."""
    db = await SQLiteDatabase.open(path, component=EDI_COMPONENT, version=EDI_SCHEMA_VERSION, schema=_SCHEMA)
    return EdiStores(ControlNumbers(db), SentLog(db), Outbound(db), db)
