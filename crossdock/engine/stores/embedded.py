"""Opening the embedded stores: dead letters, idempotency keys and the journal in one SQLite file.

Open with ``stores = await open_sqlite_stores("data/crossdock.db")`` and close with
``await stores.close()``, or ``async with await open_sqlite_stores(path) as stores: ...``.
"""

from __future__ import annotations

from pathlib import Path

from crossdock.engine.stores.base import Stores
from crossdock.engine.stores.journal import SQLiteJournal, ensure_journal_schema
from crossdock.engine.stores.sqlite import (
    STORES_COMPONENT,
    STORES_SCHEMA,
    STORES_SCHEMA_VERSION,
    SQLiteDatabase,
    SQLiteDeadLetterStore,
    SQLiteIdempotencyStore,
)


async def open_sqlite_stores(path: str | Path, *, journal_flush_every: int = 1024) -> Stores:
    """Open (creating when missing) the stores database at `path`; close it with `await stores.close()`."""
    db = await SQLiteDatabase.open(path, component=STORES_COMPONENT, version=STORES_SCHEMA_VERSION,
                                   schema=STORES_SCHEMA)
    try:
        await db.run(lambda conn: ensure_journal_schema(conn, db))
    except BaseException:
        await db.close()
        raise
    # the journal has a connection of its own without fsync per commit: lineage is not what a source's
    # acknowledgment waits for, and its writes then never queue behind a dead letter's or a key's
    journal_db = await SQLiteDatabase.open(path, component=STORES_COMPONENT, version=STORES_SCHEMA_VERSION,
                                           schema=STORES_SCHEMA, synchronous="NORMAL")

    async def close() -> None:
        try:
            await journal_db.close()
        finally:
            await db.close()

    return Stores(
        dead_letters=SQLiteDeadLetterStore(db),
        idempotency=SQLiteIdempotencyStore(db),
        journal=SQLiteJournal(journal_db, flush_every=journal_flush_every),
        on_close=close,
    )
