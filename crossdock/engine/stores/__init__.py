"""The runtime's stores (dead letters, idempotency keys, journal): protocols and the embedded SQLite ones."""

from crossdock.engine.stores.base import (
    DeadLetter,
    DeadLetterStore,
    IdempotencyStore,
    Journal,
    JournalEvent,
    Stores,
)
from crossdock.engine.stores.embedded import open_sqlite_stores

__all__ = [
    "DeadLetter",
    "DeadLetterStore",
    "IdempotencyStore",
    "Journal",
    "JournalEvent",
    "Stores",
    "open_sqlite_stores",
]
