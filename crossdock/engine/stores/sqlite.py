"""The embedded stores: dead letters, idempotency keys and the journal in one SQLite file.

Durability: the database runs in WAL mode with ``synchronous=FULL``, so a dead-letter ``put`` or an
idempotency ``record`` is on disk when it returns and the runtime may acknowledge the source.

The journal lives in the same file; its tables and buffering are in
:mod:`crossdock.engine.stores.journal`, and :func:`crossdock.engine.stores.embedded.open_sqlite_stores`
opens them all.

Blocking sqlite3 calls run in a worker thread (``anyio.to_thread``) behind an ``anyio.Lock``, so one
connection serves every task of the process and the event loop never waits on the disk.
:class:`SQLiteDatabase` is that wrapper; the embedded queue connector uses it too. sqlite3 errors are
classified there: busy, locked, I/O, disk full and can't-open are transient (``SQL001``); anything else
is permanent (``SQL002``); a database written by another schema version is ``SQL003``.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import anyio
import anyio.to_thread
import orjson

from crossdock.engine.errors import CrossdockError, PermanentError, TransientError, TransientKind
from crossdock.engine.stores.base import DeadLetter

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_SECONDS = 5.0
STORES_COMPONENT = "stores"
STORES_SCHEMA_VERSION = 1

_TRANSIENT_SQLITE_CODES = frozenset({
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL,
})


def classify_sqlite_error(error: sqlite3.Error, path: Path) -> CrossdockError:
    """The classified error for a sqlite3 exception raised while using the database at `path`."""
    code = getattr(error, "sqlite_errorcode", None)
    message = f"SQLite database {path}: {error}"
    details = {"path": str(path), "sqlite_error": getattr(error, "sqlite_errorname", type(error).__name__)}
    # Extended result codes keep the primary code in the low byte (SQLITE_IOERR_FSYNC -> SQLITE_IOERR).
    if code is not None and code & 0xFF in _TRANSIENT_SQLITE_CODES:
        return TransientError(message, kind=TransientKind.UNAVAILABLE, code="SQL001", details=details)
    return PermanentError(message, code="SQL002", details=details)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction taken up front (`BEGIN IMMEDIATE`), so readers-turned-writers never deadlock."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (disk full) can leave the transaction open.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _connect(path: Path, component: str, version: int, schema: Sequence[str],
             synchronous: str = "FULL") -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PermanentError(f"cannot create the folder for SQLite database {path}: {exc.strerror}",
                             code="SQL002", details={"path": str(path)}) from exc
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            log.warning("SQLite database %s cannot use WAL mode (got %r); writers will block readers",
                        path, mode)
        conn.execute(f"PRAGMA synchronous={synchronous}")
        ensure_schema(conn, path, component, version, schema)
    except BaseException:
        conn.close()
        raise
    return conn


def ensure_schema(conn: sqlite3.Connection, path: Path, component: str, version: int,
                  schema: Sequence[str]) -> None:
    """Run `schema` (creating `component`'s tables) unless the file has them; SQL003 for another version."""
    with transaction(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                     "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version WHERE component = ?", (component,)).fetchone()
        if row is None:
            for statement in schema:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (component, version) VALUES (?, ?)",
                         (component, version))
        elif row[0] != version:
            raise PermanentError(
                f"SQLite database {path} holds {component} schema version {row[0]}; "
                f"this crossdock uses version {version}",
                code="SQL003", details={"path": str(path), "found": row[0], "expected": version},
            )


class SQLiteDatabase:
    """One SQLite connection shared by the tasks of a process: calls run in a worker thread, one at a time."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = conn
        self._lock = anyio.Lock()

    @classmethod
    async def open(cls, path: str | Path, *, component: str, version: int,
                   schema: Sequence[str], synchronous: str = "FULL") -> SQLiteDatabase:
        """Open (creating the file, its folder and `component`'s tables when missing) in WAL mode.

        `synchronous` FULL fsyncs every commit (what acknowledging a source relies on); NORMAL, in WAL
        mode, survives a crash of the process but not of the machine, for data that is not a promise.
        """
        path = Path(path)
        try:
            conn = await anyio.to_thread.run_sync(_connect, path, component, version, schema, synchronous)
        except sqlite3.Error as exc:
            raise classify_sqlite_error(exc, path) from exc
        return cls(conn, path)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(connection)` in a worker thread; sqlite3 errors come out classified."""
        async with self._lock:
            if self._conn is None:
                raise PermanentError(f"SQLite database {self.path} is closed", code="SQL002")
            try:
                return await anyio.to_thread.run_sync(work, self._conn)
            except sqlite3.Error as exc:
                raise classify_sqlite_error(exc, self.path) from exc

    async def close(self) -> None:
        """Close the connection; later calls to :meth:`run` fail, a second close does nothing."""
        async with self._lock:
            if self._conn is not None:
                await anyio.to_thread.run_sync(self._conn.close)
                self._conn = None


class SQLiteFile:
    """A SQLite file holding one component's tables, opened with `async with` (or `open()`/`close()`).

    Subclasses name the component, its schema version and its tables, and reach the connection through
    :attr:`database` (which says clearly when the file is not open).
    """

    component: ClassVar[str]
    version: ClassVar[int]
    schema: ClassVar[Sequence[str]]
    what: ClassVar[str] = "SQLite file"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: SQLiteDatabase | None = None

    async def open(self) -> None:
        """Open the file, creating it, its folder and its tables when missing."""
        self._db = await SQLiteDatabase.open(self.path, component=self.component, version=self.version,
                                             schema=self.schema)

    async def close(self) -> None:
        """Close the file; a second close does nothing."""
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def database(self) -> SQLiteDatabase:
        if self._db is None:
            raise PermanentError(f"{self.what} {self.path} is not open", code="SQL002")
        return self._db


def dumps(value: Any) -> str:
    """JSON text for a column; values JSON cannot hold (Decimal, odd types) are written as strings
    rather than failing, because a dead letter that cannot be stored blocks its source."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def loads(text: str | None) -> Any:
    """The value of a JSON column."""
    return None if text is None else orjson.loads(text)


STORES_SCHEMA = (
    """CREATE TABLE dead_letters (
        id TEXT PRIMARY KEY,
        route TEXT NOT NULL,
        step TEXT NOT NULL,
        step_path TEXT NOT NULL,
        correlation_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        idempotency_key TEXT,
        business_key TEXT,
        code TEXT,
        payload BLOB NOT NULL,
        stage_payload BLOB,
        headers TEXT NOT NULL,
        meta TEXT NOT NULL,
        error TEXT NOT NULL,
        error_chain TEXT NOT NULL,
        attempts TEXT NOT NULL,
        created_at REAL NOT NULL,
        replayed_at REAL,
        replay_count INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX dead_letters_by_created ON dead_letters (created_at)",
    "CREATE INDEX dead_letters_by_route ON dead_letters (route, created_at)",
    """CREATE TABLE idempotency (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        recorded_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (scope, key)
    ) WITHOUT ROWID""",
    "CREATE INDEX idempotency_by_expiry ON idempotency (expires_at)",
    """CREATE TABLE journal (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        route TEXT NOT NULL,
        correlation_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        event TEXT NOT NULL,
        step TEXT,
        business_key TEXT,
        detail TEXT NOT NULL
    )""",
    "CREATE INDEX journal_by_at ON journal (at)",
    "CREATE INDEX journal_by_correlation ON journal (correlation_id)",
    # `journal` is the layout of earlier versions (a row per event), kept so that version 1 of this
    # schema stays what it was; crossdock.engine.stores.journal moves its rows to journal_stories
)


def where_clause(conditions: Sequence[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """A WHERE clause from `(sql with one ?, value)` pairs whose value is not None."""
    used = [(sql, value) for sql, value in conditions if value is not None]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(sql for sql, _ in used), [value for _, value in used]


_DEAD_LETTER_COLUMNS = (
    "id", "route", "step", "step_path", "correlation_id", "message_id", "idempotency_key", "business_key",
    "code", "payload", "stage_payload", "headers", "meta", "error", "error_chain", "attempts", "created_at",
    "replayed_at", "replay_count",
)
_INSERT_DEAD_LETTER = (f"INSERT INTO dead_letters ({', '.join(_DEAD_LETTER_COLUMNS)}) "
                       f"VALUES ({', '.join('?' for _ in _DEAD_LETTER_COLUMNS)})")


def _dead_letter_row(entry: DeadLetter) -> tuple[Any, ...]:
    return (
        entry.id, entry.route, entry.step, entry.step_path, entry.correlation_id, entry.message_id,
        entry.idempotency_key, entry.business_key, entry.code, entry.payload, entry.stage_payload,
        dumps(entry.headers), dumps(entry.meta), dumps(entry.error), dumps(entry.error_chain),
        dumps(entry.attempts), entry.created_at, entry.replayed_at, entry.replay_count,
    )


def _dead_letter(row: sqlite3.Row) -> DeadLetter:
    return DeadLetter(
        id=row["id"], route=row["route"], step=row["step"], step_path=row["step_path"],
        correlation_id=row["correlation_id"], message_id=row["message_id"],
        idempotency_key=row["idempotency_key"], business_key=row["business_key"],
        payload=bytes(row["payload"]),
        stage_payload=None if row["stage_payload"] is None else bytes(row["stage_payload"]),
        headers=loads(row["headers"]), meta=loads(row["meta"]), error=loads(row["error"]),
        error_chain=loads(row["error_chain"]), attempts=loads(row["attempts"]),
        created_at=row["created_at"], replayed_at=row["replayed_at"], replay_count=row["replay_count"],
    )


def _changes(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    with transaction(conn):
        return conn.execute(sql, params).rowcount


class SQLiteDeadLetterStore:
    """:class:`~crossdock.engine.stores.base.DeadLetterStore` on the `dead_letters` table."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def put(self, entry: DeadLetter) -> str:
        row = _dead_letter_row(entry)
        await self._db.run(lambda conn: _changes(conn, _INSERT_DEAD_LETTER, row))
        return entry.id

    async def get(self, id: str) -> DeadLetter | None:
        row = await self._db.run(
            lambda conn: conn.execute("SELECT * FROM dead_letters WHERE id = ?", (id,)).fetchone())
        return None if row is None else _dead_letter(row)

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
        where, params = where_clause([("route = ?", route), ("code = ?", code),
                                ("created_at >= ?", since), ("created_at < ?", until)])
        sql = f"SELECT * FROM dead_letters{where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?"
        rows = await self._db.run(lambda conn: conn.execute(sql, [*params, limit, offset]).fetchall())
        return [_dead_letter(row) for row in rows]

    async def count(self, route: str | None = None) -> int:
        where, params = where_clause([("route = ?", route)])
        return await self._db.run(
            lambda conn: conn.execute(f"SELECT COUNT(*) FROM dead_letters{where}", params).fetchone()[0])

    async def oldest_created_at(self) -> float | None:
        return await self._db.run(
            lambda conn: conn.execute("SELECT MIN(created_at) FROM dead_letters").fetchone()[0])

    async def mark_replayed(self, id: str, at: float) -> None:
        sql = "UPDATE dead_letters SET replayed_at = ?, replay_count = replay_count + 1 WHERE id = ?"
        await self._db.run(lambda conn: _changes(conn, sql, (at, id)))

    async def delete(self, ids: Sequence[str]) -> int:
        unique = list(dict.fromkeys(ids))
        return await self._db.run(partial(_delete_ids, unique))

    async def purge(self, *, route: str | None = None, before: float | None = None) -> int:
        where, params = where_clause([("route = ?", route), ("created_at < ?", before)])
        return await self._db.run(lambda conn: _changes(conn, f"DELETE FROM dead_letters{where}", params))


IDS_PER_STATEMENT = 500  # well under SQLite's limit on bound parameters


def marks(values: Sequence[Any]) -> str:
    """`?, ?, ?`: one placeholder per value, for an `IN (...)`."""
    return ", ".join("?" for _ in values)


def _delete_ids(ids: Sequence[str], conn: sqlite3.Connection) -> int:
    deleted = 0
    with transaction(conn):
        for start in range(0, len(ids), IDS_PER_STATEMENT):
            chunk = ids[start:start + IDS_PER_STATEMENT]
            deleted += conn.execute(f"DELETE FROM dead_letters WHERE id IN ({marks(chunk)})", chunk).rowcount
    return deleted


class SQLiteIdempotencyStore:
    """:class:`~crossdock.engine.stores.base.IdempotencyStore` on the `idempotency` table."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def seen(self, scope: str, key: str, now: float) -> bool:
        sql = "SELECT 1 FROM idempotency WHERE scope = ? AND key = ? AND expires_at > ?"
        return await self._db.run(lambda conn: conn.execute(sql, (scope, key, now)).fetchone() is not None)

    async def record(self, scope: str, key: str, ttl_seconds: float, now: float) -> None:
        sql = ("INSERT INTO idempotency (scope, key, recorded_at, expires_at) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (scope, key) DO UPDATE SET recorded_at = excluded.recorded_at, "
               "expires_at = MAX(expires_at, excluded.expires_at)")
        await self._db.run(lambda conn: _changes(conn, sql, (scope, key, now, now + ttl_seconds)))

    async def expire(self, now: float) -> int:
        return await self._db.run(lambda conn: _changes(conn, "DELETE FROM idempotency WHERE expires_at <= ?",
                                                        (now,)))
