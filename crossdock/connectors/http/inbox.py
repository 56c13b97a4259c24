"""The intake inbox: accepted requests in a SQLite file until their route acknowledges them.

A request is answered 202 only once its row is on disk (WAL, `synchronous=FULL`). Writing one
transaction per request would cost one fsync each, so writes are grouped: each request queues its
row and takes a fair (FIFO) lock; whoever holds the lock commits every row queued so far in one
transaction, and the requests whose rows that commit carried find them done when their turn comes.
Under load a commit carries many requests; alone, a request still commits at once. Acknowledgments
(deletes) join the same commits.

`Idempotency-Key` handling lives in the same transaction as the insert, so two concurrent requests
with one key can never both be stored: the first stores its row and its answer, the second finds
the answer (same request) or a conflict (another request with that key).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from crossdock.engine.errors import PermanentError
from crossdock.engine.stores.sqlite import SQLiteFile, dumps, loads, transaction

INBOX_COMPONENT = "http-inbox"
INBOX_SCHEMA_VERSION = 1
DEFAULT_INBOX_NAME = "http-inbox.db"

_SCHEMA = (
    """CREATE TABLE http_inbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        endpoint TEXT NOT NULL,
        message_id TEXT NOT NULL,
        correlation_id TEXT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        path_params TEXT NOT NULL,
        query TEXT NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        received_at REAL NOT NULL
    )""",
    "CREATE INDEX http_inbox_by_endpoint ON http_inbox (endpoint, seq)",
    """CREATE TABLE http_idempotency (
        endpoint TEXT NOT NULL,
        client TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL,
        response BLOB NOT NULL,
        correlation_id TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (endpoint, client, key)
    ) WITHOUT ROWID""",
    "CREATE INDEX http_idempotency_by_expiry ON http_idempotency (expires_at)",
)


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """An `Idempotency-Key` of a request: whose, which key, what request, for how long."""

    client: str
    key: str
    fingerprint: str
    window: float


@dataclass(frozen=True, slots=True)
class IntakeRequest:
    """A request to store, with the answer it gets when stored."""

    endpoint: str
    message_id: str
    correlation_id: str
    method: str
    path: str
    path_params: dict[str, str]
    query: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    received_at: float
    status: int
    response: bytes
    idempotency: IdempotencyClaim | None = None


@dataclass(frozen=True, slots=True)
class Stored:
    """What a request got: its own answer (stored now) or the first answer for its key (`replayed`)."""

    status: int
    response: bytes
    correlation_id: str
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class KeyConflict:
    """The request's Idempotency-Key was used for another request within the window."""

    correlation_id: str


@dataclass(frozen=True, slots=True)
class InboxRow:
    """A stored request waiting for its route."""

    seq: int
    endpoint: str
    message_id: str
    correlation_id: str
    method: str
    path: str
    path_params: dict[str, str]
    query: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    received_at: float


def _row(row: sqlite3.Row) -> InboxRow:
    return InboxRow(seq=row["seq"], endpoint=row["endpoint"], message_id=row["message_id"],
                    correlation_id=row["correlation_id"], method=row["method"], path=row["path"],
                    path_params=loads(row["path_params"]), query=loads(row["query"]),
                    headers=loads(row["headers"]), body=bytes(row["body"]), received_at=row["received_at"])


@dataclass(eq=False, slots=True)
class _Write:
    """One queued write: a request to store (`request`) or a row to delete (`seq`)."""

    request: IntakeRequest | None = None
    seq: int | None = None
    result: Stored | KeyConflict | None = None
    done: bool = False
    error: BaseException | None = field(default=None, repr=False)


def _store(conn: sqlite3.Connection, request: IntakeRequest) -> Stored | KeyConflict:
    claim = request.idempotency
    if claim is not None:
        found = conn.execute(
            "SELECT fingerprint, status, response, correlation_id FROM http_idempotency "
            "WHERE endpoint = ? AND client = ? AND key = ? AND expires_at > ?",
            (request.endpoint, claim.client, claim.key, request.received_at)).fetchone()
        if found is not None:
            if found["fingerprint"] != claim.fingerprint:
                return KeyConflict(found["correlation_id"])
            return Stored(found["status"], bytes(found["response"]), found["correlation_id"], replayed=True)
        conn.execute(
            "INSERT OR REPLACE INTO http_idempotency (endpoint, client, key, fingerprint, status, response, "
            "correlation_id, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (request.endpoint, claim.client, claim.key, claim.fingerprint, request.status, request.response,
             request.correlation_id, request.received_at + claim.window))
    conn.execute(
        "INSERT INTO http_inbox (endpoint, message_id, correlation_id, method, path, path_params, query, headers, "
        "body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (request.endpoint, request.message_id, request.correlation_id, request.method, request.path,
         dumps(request.path_params), dumps(request.query), dumps(request.headers), request.body,
         request.received_at))
    return Stored(request.status, request.response, request.correlation_id)


def _commit(writes: Sequence[_Write], conn: sqlite3.Connection) -> list[Stored | KeyConflict | None]:
    results: list[Stored | KeyConflict | None] = []
    latest = 0.0
    with transaction(conn):
        for write in writes:
            if write.request is not None:
                latest = max(latest, write.request.received_at)
                results.append(_store(conn, write.request))
            else:
                conn.execute("DELETE FROM http_inbox WHERE seq = ?", (write.seq,))
                results.append(None)
        if latest:
            conn.execute("DELETE FROM http_idempotency WHERE expires_at <= ?", (latest,))
    return results


class Inbox(SQLiteFile):
    """An inbox file; shared by every intake route of an engine that names it (rows carry the endpoint)."""

    component = INBOX_COMPONENT
    version = INBOX_SCHEMA_VERSION
    schema = _SCHEMA
    what = "the http inbox"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._queued: list[_Write] = []
        self._commit_lock = anyio.Lock()

    async def store(self, request: IntakeRequest) -> Stored | KeyConflict:
        """Store `request` durably (or find the answer its Idempotency-Key already has)."""
        write = _Write(request=request)
        await self._write(write)
        if write.result is None:  # the commit was interrupted by something other than an error
            raise PermanentError(f"the http inbox {self.path} did not store the request", code="SQL002")
        return write.result

    async def delete(self, seq: int) -> None:
        """Remove an acknowledged row for good."""
        await self._write(_Write(seq=seq))

    async def _write(self, write: _Write) -> None:
        database = self.database
        self._queued.append(write)
        async with self._commit_lock:
            if not write.done:
                batch, self._queued = self._queued, []
                # Shielded: the requests in this batch wait for it, whatever happens to the one committing.
                with anyio.CancelScope(shield=True):
                    try:
                        results = await database.run(partial(_commit, batch))
                    except Exception as error:
                        for item in batch:
                            item.error = error
                    else:
                        for item, result in zip(batch, results, strict=True):
                            item.result = result
                    finally:
                        for item in batch:
                            item.done = True
        if write.error is not None:
            raise write.error

    async def rows(self, endpoint: str, *, after: int, limit: int) -> list[InboxRow]:
        """Up to `limit` rows of `endpoint` numbered above `after`, oldest first."""
        found = await self.database.run(lambda conn: conn.execute(
            "SELECT * FROM http_inbox WHERE endpoint = ? AND seq > ? ORDER BY seq LIMIT ?",
            (endpoint, after, limit)).fetchall())
        return [_row(row) for row in found]

    async def depths(self) -> dict[str, int]:
        """How many rows wait for each endpoint that has any."""
        found = await self.database.run(lambda conn: conn.execute(
            "SELECT endpoint, COUNT(*) FROM http_inbox GROUP BY endpoint ORDER BY endpoint").fetchall())
        return {str(endpoint): int(count) for endpoint, count in found}

    async def depth(self, endpoint: str | None = None) -> int:
        """How many rows wait (for one endpoint, or in all)."""
        if endpoint is None:
            return await self.database.run(lambda conn: conn.execute("SELECT COUNT(*) FROM http_inbox").fetchone()[0])
        return await self.database.run(lambda conn: conn.execute(
            "SELECT COUNT(*) FROM http_inbox WHERE endpoint = ?", (endpoint,)).fetchone()[0])
