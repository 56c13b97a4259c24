"""What a polling source finished reading, so that a crash between delivery and clean-up never
processes a file twice.

A remote folder cannot be changed in one transaction with the sinks, so a source that acknowledges by
moving a file (SFTP) records first, durably, that the file was processed and how it ended, then moves
it, then forgets the record. After a crash between the record and the move the file is still in the
folder: the source finds its record (same name, size, modification time and content hash), finishes
the move and does not offer the file again. A file that comes back with other contents under the same
name is new, and is processed.

Records live in their own SQLite file (WAL, `synchronous=FULL`, so a record is on disk when
:meth:`ReadLog.record` returns), one file per data folder shared by every source, each source keeping
its records under its own `place` (connection and folder).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from crossdock.engine.stores.sqlite import SQLiteFile, transaction

READLOG_COMPONENT = "readlog"
READLOG_SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE read_files (
        place TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        outcome TEXT NOT NULL,
        recorded_at REAL NOT NULL,
        PRIMARY KEY (place, name)
    ) WITHOUT ROWID""",
)


@dataclass(frozen=True, slots=True)
class ReadRecord:
    """A file that was processed (with `outcome`) but may not have been moved away yet."""

    name: str
    size: int
    mtime: int
    sha256: str
    outcome: str
    recorded_at: float

    def matches(self, size: int, mtime: int, sha256: str) -> bool:
        """Whether a file seen now is the very file this record is about."""
        return (self.size, self.mtime, self.sha256) == (size, mtime, sha256)


def _record(place: str, entry: ReadRecord, conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT INTO read_files (place, name, size, mtime, sha256, outcome, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (place, name) DO UPDATE SET size = excluded.size, "
            "mtime = excluded.mtime, sha256 = excluded.sha256, outcome = excluded.outcome, "
            "recorded_at = excluded.recorded_at",
            (place, entry.name, entry.size, entry.mtime, entry.sha256, entry.outcome, entry.recorded_at))


def _forget(place: str, names: tuple[str, ...], conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.executemany("DELETE FROM read_files WHERE place = ? AND name = ?", [(place, n) for n in names])


def _records(place: str, conn: sqlite3.Connection) -> dict[str, ReadRecord]:
    rows = conn.execute("SELECT name, size, mtime, sha256, outcome, recorded_at FROM read_files WHERE place = ?",
                        (place,)).fetchall()
    return {row["name"]: ReadRecord(row["name"], row["size"], row["mtime"], row["sha256"], row["outcome"],
                                    row["recorded_at"]) for row in rows}


class ReadLog(SQLiteFile):
    """The records of one place (a connection's folder) in a read-log file.

    Use as `async with ReadLog(path, place) as log:`, or `open()` ... `close()`; sqlite3 errors come
    out classified (SQL001/SQL002).
    """

    component = READLOG_COMPONENT
    version = READLOG_SCHEMA_VERSION
    schema = _SCHEMA
    what = "the read log"

    def __init__(self, path: Path, place: str) -> None:
        super().__init__(path)
        self.place = place

    async def record(self, entry: ReadRecord) -> None:
        """Remember that a file was processed; on disk when this returns."""
        await self.database.run(partial(_record, self.place, entry))

    async def forget(self, *names: str) -> None:
        """Drop the records of files that are gone from the folder (moved or deleted)."""
        if names:
            await self.database.run(partial(_forget, self.place, names))

    async def records(self) -> dict[str, ReadRecord]:
        """Every record of this place, by file name."""
        return await self.database.run(partial(_records, self.place))
