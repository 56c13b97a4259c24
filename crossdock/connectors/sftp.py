"""The `sftp` connector: folders on an SSH server (OpenSSH and others) as a source and as a sink.

The remote twin of the `file` connector, built on asyncssh (asyncio-native); option names are the
file connector's wherever they mean the same thing.

Features
- Connection: one SSH connection (and SFTP channel) per source or sink, opened when the route starts
  and opened again after it was lost; keepalives notice a dead peer. Host keys are always checked
  against the `known hosts` file: an unknown or changed key is refused (SFT001, with the fingerprint
  the server offered), never added. Login with a private key (`key`: a file path or the key text,
  optionally with `key passphrase`) and/or a `password`, both secrets; no agent, no ~/.ssh files.
- Source: polls `folder` every `check every` for regular files matching `files`, in name order, taking
  a file only once its size and modification time stayed the same across two looks `settle` apart, or,
  with `done file`, once its marker (`orders.x12` + `.done`) exists. Hidden names and names ending in
  .tmp, .part or .filepart are never taken. Up to `parallel downloads` files are downloaded at once
  ahead of the one being processed. A file that disappears between the listing and the download is
  skipped (and logged); one that cannot be read is skipped until the next look.
- Acknowledgment: after success the file is moved to `after success move to` (default: a `done`
  sub-folder) or deleted with `after success delete`; after dead-lettering it is moved to
  `after failure move to` (default: `failed`). Relative targets are taken from the watched folder.
  A move never overwrites: on a name clash the file becomes `orders-1.x12`, `orders-2.x12`...
  `release()` leaves the file where it is for the next look.
- Crash safety: before moving, the source records durably (name, size, modification time, SHA-256,
  outcome; :mod:`crossdock.engine.stores.readlog`, `sftp-readlog.db` in the data folder) that the file
  was processed. If the process dies between that record and the move, the file is found again with a
  matching record and moved as recorded, not processed a second time. Message ids are stable per
  (host, port, path, size, modification time), so a file offered again keeps its id.
- Sink: uploads the body to a dot-prefixed temporary name in `folder`, fsyncs it where the server
  offers fsync@openssh.com, then renames it to its final name with posix-rename@openssh.com (atomic,
  replaces an older file of that name). Servers without that extension get a plain SFTP rename, which
  cannot replace: an existing file of the name is removed first, so for a moment the name is missing,
  but it never shows a partial file. The name is `message.meta["file_name"]` (the runtime renders
  `file name` there), else `<message id>.json`; a name with a path separator or a leading dot is refused.
  A temporary file left by a process that died mid-upload (`.<name>.<8 hex>.tmp`) is removed, with a
  warning, when a sink first writes to the folder and the file is over an hour old.

Options (host, port, user, key, key passphrase, password, known hosts, connect timeout only in the
connection block; the others on the connection or on the step)
    host                    the server's name or address (required)
    port                    the SSH port, default 22
    user                    the user to log in as (required)
    key                     secret: a private key, as a file path or as the key text
    key passphrase          secret: the passphrase of an encrypted key
    password                secret: a password, when the server takes one
    known hosts             the known_hosts file holding the server's host key (required)
    connect timeout         how long to wait for the connection and login, default 15s
    folder                  the remote folder to watch or write to (required)
    files                   source: a glob of names to take, default "*"
    check every             source: how often to look, default 30s
    settle                  source: how long a file must stay unchanged, default 2s
    done file               source: take a file only when this marker suffix exists next to it
    after success move to   source: where processed files go, default the `done` sub-folder
    after success delete    source: delete processed files instead of moving them
    after failure move to   source: where dead-lettered files go, default the `failed` sub-folder
    parallel downloads      source: how many files are downloaded at once, default 4
    file name               sink: a template for each file's name, default "{{ message_id }}{{ extension }}"
    create folders          create missing folders, default yes

Error codes: SFT001 host key not trusted; SFT002 login refused; SFT003 no such file or folder, or
permission denied (with the path); SFT004 the known hosts file is missing or unreadable; SFT005
unusable credentials or settings (no key or password, a key that cannot be read, a port that is not a
number); SFT006 a refused file name; SFT007 a body that is not bytes; SFT008 both `after success move
to` and `after success delete`; SFT009 a folder is missing and `create folders` is off; SFT010
(transient) connection failed or lost; SFT011 (transient) timed out; SFT012 (transient) the server
reported a failure; SFT013 the server lacks SFTP or an operation, or broke the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import posixpath
import re
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Self, TypeVar

import asyncssh

from crossdock.connectors import file as file_connector
from crossdock.connectors.base import Capabilities, ConnectorContext, ConnectorSpec
from crossdock.dsl.options import OptionSpec, OptionType, Role, Scope
from crossdock.engine.clock import Clock
from crossdock.engine.errors import CrossdockError, PermanentError, TransientError, TransientKind
from crossdock.engine.message import Inbound, Message, Outcome, derived_id
from crossdock.engine.stores.readlog import ReadLog, ReadRecord

log = logging.getLogger(__name__)

T = TypeVar("T")

_SOURCE = frozenset({Role.SOURCE})
_SINK = frozenset({Role.SINK})

# Options that mean on a remote folder what they mean on a local one: the file connector's, with the
# defaults an SFTP server wants (its mtimes have a resolution of a second; polling costs a round trip).
_REMOTE_DEFAULTS: dict[str, dict[str, Any]] = {
    "folder": {"example": '"/outbound/850"'},
    "check every": {"default": 30.0, "example": "1m"},
    "settle": {"default": 2.0, "example": "5s"},
    "after success move to": {"example": '"/archive"'},
    "after failure move to": {"example": '"/rejected"'},
    "file name": {"example": '"997-{{ message_id }}.x12"'},
}


def _folder_options() -> tuple[OptionSpec, ...]:
    options = [replace(spec, **_REMOTE_DEFAULTS.get(spec.name, {})) for spec in file_connector.OPTIONS]
    position = next(i for i, spec in enumerate(options) if spec.name == "after failure move to") + 1
    options.insert(position, OptionSpec(
        "parallel downloads", OptionType.INTEGER,
        "How many files are downloaded at once, ahead of the one being processed.",
        default=4, example="8", roles=_SOURCE))
    return tuple(options)


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("host", OptionType.STRING, "The SSH server's host name or address.",
               example='env "ACME_SFTP_HOST"', required=True, scope=Scope.CONNECTION),
    OptionSpec("port", OptionType.INTEGER, "The SSH server's port.", default=22, example="2222",
               scope=Scope.CONNECTION),
    OptionSpec("user", OptionType.STRING, "The user to log in as.", example='"crossdock"', required=True,
               scope=Scope.CONNECTION),
    OptionSpec("key", OptionType.STRING,
               "The private key to log in with: the path of a key file, or the key text itself "
               "(OpenSSH or PEM format).",
               example='secret "ACME_SFTP_KEY"', secret=True, scope=Scope.CONNECTION),
    OptionSpec("key passphrase", OptionType.STRING, "The passphrase of an encrypted private key.",
               example='secret "ACME_SFTP_KEY_PASSPHRASE"', secret=True, scope=Scope.CONNECTION),
    OptionSpec("password", OptionType.STRING, "A password to log in with, when the server takes one.",
               example='secret "ACME_SFTP_PASSWORD"', secret=True, scope=Scope.CONNECTION),
    OptionSpec("known hosts", OptionType.STRING,
               "The known_hosts file that holds the server's host key; a server whose key is not in it "
               "is refused, never trusted on first use. A relative path is taken from the data folder.",
               example='"config/known_hosts"', required=True, scope=Scope.CONNECTION),
    OptionSpec("connect timeout", OptionType.DURATION,
               "How long to wait for the connection and the login before trying again later.",
               default=15.0, example="30s", scope=Scope.CONNECTION),
    *_folder_options(),
)


SPEC = ConnectorSpec(
    kind="sftp",
    description="Folders on an SSH server: take files from one, upload files to another; host keys are verified.",
    roles=frozenset({Role.SOURCE, Role.SINK}),
    options=OPTIONS,
    connection="required",
    capabilities=Capabilities(supports_confirm=True),
)

DEFAULT_DONE_FOLDER = "done"
READLOG_FILE = "sftp-readlog.db"
# A dead peer (or a NAT that forgot the connection) is noticed after about 3 x 30 s without an answer.
KEEPALIVE_INTERVAL = 30.0
KEEPALIVE_COUNT_MAX = 3
# How long the extra connection that fetches a refused host key's fingerprint (for the message) may take.
FINGERPRINT_TIMEOUT = 5.0
# Every SFTP server answers a read request of 32 KiB (the protocol's minimum packet size) in full.
SINGLE_READ_BYTES = 32 * 1024
_IGNORED_SUFFIXES = (".tmp", ".part", ".filepart", ".crdownload")

_PATH_ERRORS = (asyncssh.SFTPNoSuchFile, asyncssh.SFTPPermissionDenied, asyncssh.SFTPNotADirectory,
                asyncssh.SFTPFileIsADirectory, asyncssh.SFTPInvalidFilename, asyncssh.SFTPNoSuchPath)
_CONNECTION_ERRORS = (asyncssh.DisconnectError, asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection,
                      asyncssh.ChannelOpenError, ConnectionError, EOFError)
_UNSUPPORTED_ERRORS = (asyncssh.SFTPOpUnsupported, asyncssh.SFTPBadMessage)


def _option(options: Mapping[str, Any], key: str) -> Any:
    """The option's value, or its declared default when the runtime left it out."""
    if key in options:
        return options[key]
    return next(spec.default for spec in OPTIONS if spec.key == key)


# ---- the connection ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Where and how to log in, from the connection block's options (secrets kept out of the repr)."""

    host: str
    port: int
    user: str
    known_hosts: Path
    connect_timeout: float
    key_file: Path | None = None
    key_text: str | None = field(default=None, repr=False)
    key_passphrase: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], context: ConnectorContext) -> ConnectionSettings:
        port = _option(options, "port")
        try:
            port = int(port)
        except (TypeError, ValueError):
            raise PermanentError(f"sftp: the port {port!r} is not a number", code="SFT005") from None
        key = options.get("key") or None
        password = options.get("password") or None
        if key is None and password is None:
            raise PermanentError("sftp: the connection needs a `key` or a `password` (as a secret)", code="SFT005")
        # The key text itself (from a secret) has a PEM/OpenSSH armour line; anything else names a file.
        is_text = key is not None and ("-----BEGIN" in key or "\n" in key)
        return cls(
            host=str(options["host"]),
            port=port,
            user=str(options["user"]),
            known_hosts=context.resolve_path(str(options["known_hosts"])),
            connect_timeout=float(_option(options, "connect_timeout")),
            key_file=context.resolve_path(key) if key is not None and not is_text else None,
            key_text=key if is_text else None,
            key_passphrase=options.get("key_passphrase") or None,
            password=password,
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def client_keys(self) -> list[asyncssh.SSHKey]:
        """The private key, read from its file or parsed from its text; SFT005 when it cannot be used."""
        try:
            if self.key_text is not None:
                return [asyncssh.import_private_key(self.key_text, self.key_passphrase)]
            if self.key_file is not None:
                return [asyncssh.read_private_key(self.key_file, self.key_passphrase)]
        except OSError as exc:
            raise PermanentError(f"sftp: cannot read the private key file {self.key_file}: {exc.strerror or exc}",
                                 code="SFT005", details={"path": str(self.key_file)}) from None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            # The message never quotes the value: it may be the key text itself.
            raise PermanentError(f"sftp: the private key for {self.user}@{self.address} cannot be used: {exc}",
                                 code="SFT005") from None
        return []


def host_key_refused(settings: ConnectionSettings, offered: str | None = None) -> PermanentError:
    """SFT001: the server's host key is not in the known hosts file (or differs from the one there)."""
    message = (f"the host key of {settings.address} is not trusted: it is not in the known hosts file "
               f"{settings.known_hosts}, or it changed")
    details: dict[str, Any] = {"host": settings.host, "port": settings.port, "known_hosts": str(settings.known_hosts)}
    if offered:
        message += f"; the server offered {offered}: check it with the server's owner before adding it"
        details["offered_key"] = offered
    return PermanentError(message, code="SFT001", details=details)


def classify_ssh_error(error: BaseException, action: str, path: str | None,
                       settings: ConnectionSettings) -> CrossdockError:
    """A classified error for an asyncssh or OS error raised while trying to `action` `path`."""
    where = f"{settings.user}@{settings.address}"
    target = f"{where}:{path}" if path else where
    reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or str(error) or type(error).__name__
    details: dict[str, Any] = {"host": settings.host, "port": settings.port}
    if path:
        details["path"] = path
    if isinstance(error, asyncssh.HostKeyNotVerifiable):
        return host_key_refused(settings)
    if isinstance(error, asyncssh.PermissionDenied):
        return PermanentError(f"{settings.address} refused the login of user {settings.user!r} with the "
                              "configured key or password", code="SFT002", details=details)
    if isinstance(error, _PATH_ERRORS):
        return PermanentError(f"cannot {action} {target}: {reason}", code="SFT003", details=details)
    if isinstance(error, TimeoutError):
        return TransientError(f"timed out trying to {action} {target}", kind=TransientKind.TIMEOUT,
                              code="SFT011", details=details)
    if isinstance(error, (*_CONNECTION_ERRORS, OSError)):
        return TransientError(f"connection lost or refused trying to {action} {target}: {reason}",
                              kind=TransientKind.CONNECTION, code="SFT010", details=details)
    if isinstance(error, _UNSUPPORTED_ERRORS):
        return PermanentError(f"cannot {action} {target}: {reason}", code="SFT013", details=details)
    return TransientError(f"the server failed to {action} {target}: {reason}", kind=TransientKind.UNAVAILABLE,
                          code="SFT012", details=details)


def _connection_broken(error: CrossdockError) -> bool:
    return isinstance(error, TransientError) and error.kind in (TransientKind.CONNECTION, TransientKind.TIMEOUT)


class SftpSession:
    """One SSH connection and its SFTP channel, opened on first use and again after it was lost.

    Every remote operation goes through :meth:`run`, which maps asyncssh errors to classified ones and
    drops a broken connection so that the next operation opens a new one.
    """

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.connections_made = 0
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        """Connect now: permanent problems (host key, login, key file) surface when the route starts;
        a server that cannot be reached now is tried again at the first operation."""
        try:
            await self.client()
        except TransientError as error:
            log.warning("sftp %s: %s; trying again when needed", self.settings.address, error)

    async def client(self) -> asyncssh.SFTPClient:
        """The SFTP client, connecting (again) when there is no live connection."""
        async with self._lock:
            if self._sftp is not None and self._conn is not None and not self._conn.is_closed():
                return self._sftp
            await self._discard()
            self._conn, self._sftp = await self._open()
            self.connections_made += 1
            return self._sftp

    async def _open(self) -> tuple[asyncssh.SSHClientConnection, asyncssh.SFTPClient]:
        s = self.settings
        try:
            # Read at every connect, so that a key added by the operator counts without a restart.
            trusted = asyncssh.read_known_hosts(str(s.known_hosts))
        except OSError as exc:
            raise PermanentError(f"sftp: cannot read the known hosts file {s.known_hosts}: {exc.strerror or exc}; "
                                 "host keys are always checked (add the server's key, e.g. from ssh-keyscan, "
                                 "after checking its fingerprint)", code="SFT004",
                                 details={"path": str(s.known_hosts)}) from None
        keys = s.client_keys()
        if self.connections_made:
            log.info("sftp %s: connecting again", s.address)
        conn: asyncssh.SSHClientConnection | None = None
        try:
            conn = await asyncssh.connect(
                s.host, port=s.port, username=s.user, client_keys=keys, password=s.password,
                known_hosts=trusted, agent_path=None, config=None, connect_timeout=s.connect_timeout,
                keepalive_interval=KEEPALIVE_INTERVAL, keepalive_count_max=KEEPALIVE_COUNT_MAX,
            )
            return conn, await conn.start_sftp_client()
        except asyncssh.HostKeyNotVerifiable:
            raise host_key_refused(s, await _offered_host_key(s)) from None
        except (asyncssh.Error, OSError) as exc:
            if conn is not None:
                conn.abort()
            raise classify_ssh_error(exc, "connect to", None, s) from exc

    async def run(self, action: str, path: str, operation: Callable[[asyncssh.SFTPClient], Awaitable[T]]) -> T:
        """Run `operation(client)`; `action` and `path` name what it does in error messages."""
        sftp = await self.client()
        try:
            return await operation(sftp)
        except (asyncssh.Error, OSError) as exc:
            error = classify_ssh_error(exc, action, path, self.settings)
            if _connection_broken(error):
                async with self._lock:
                    if self._sftp is sftp:  # not a newer connection another task opened meanwhile
                        await self._discard()
            raise error from exc

    async def _discard(self) -> None:
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            conn.abort()
            with contextlib.suppress(Exception):
                await conn.wait_closed()

    async def close(self) -> None:
        """Close the connection; the session may be used again afterwards (it reconnects)."""
        async with self._lock:
            conn, self._conn, self._sftp = self._conn, None, None
            if conn is not None:
                conn.close()
                with contextlib.suppress(Exception):
                    await conn.wait_closed()


async def _offered_host_key(settings: ConnectionSettings) -> str | None:
    """The algorithm and fingerprint of the key the server offers, for the message of a refusal."""
    try:
        key = await asyncio.wait_for(asyncssh.get_server_host_key(settings.host, settings.port, config=None),
                                     FINGERPRINT_TIMEOUT)
    except (asyncssh.Error, OSError):
        return None
    return f"{key.get_algorithm()} {key.get_fingerprint()}" if key is not None else None


async def _exists(sftp: asyncssh.SFTPClient, path: str) -> bool:
    try:
        await sftp.lstat(path)
    except asyncssh.SFTPNoSuchFile:
        return False
    return True


async def _ensure_folder(session: SftpSession, folder: str, create: bool, purpose: str) -> None:
    async def ensure(sftp: asyncssh.SFTPClient) -> None:
        if await sftp.isdir(folder):
            return
        if not create:
            raise PermanentError(f"{purpose} {session.settings.address}:{folder} does not exist "
                                 "(create it, or set 'create folders')", code="SFT009", details={"path": folder})
        await sftp.makedirs(folder, exist_ok=True)

    await session.run("create folder", folder, ensure)


def _joined(folder: str, target: str) -> str:
    """A move target: absolute as written, relative ones inside the watched folder."""
    return posixpath.normpath(posixpath.join(folder, target))


def _free_names(folder: str, name: str) -> Iterator[str]:
    """`folder/name`, then `folder/stem-1.suffix`, `-2`... for moves that must not overwrite."""
    yield posixpath.join(folder, name)
    stem, suffix = posixpath.splitext(name)
    for n in itertools.count(1):
        yield posixpath.join(folder, f"{stem}-{n}{suffix}")


# ---- the source ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Look:
    """What one listing saw of a file; a file is settled when two looks agree."""

    size: int
    mtime: int


@dataclass(frozen=True, slots=True)
class _Listing:
    """The files worth taking (by name), and every name in the folder (for markers and old records)."""

    files: dict[str, _Look]
    names: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Download:
    name: str
    look: _Look
    body: bytes
    sha256: str


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """The sftp source's options, resolved."""

    folder: str
    pattern: str
    check_every: float
    settle: float
    done_suffix: str | None
    success_folder: str | None  # None: delete after success
    failure_folder: str
    parallel_downloads: int
    create_folders: bool

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SourceSettings:
        folder = posixpath.normpath(str(options["folder"]))
        move_to = _option(options, "after_success_move_to")
        delete = bool(_option(options, "after_success_delete"))
        if delete and move_to:
            raise PermanentError("sftp source: set either 'after success move to' or 'after success delete'",
                                 code="SFT008")
        return cls(
            folder=folder,
            pattern=str(_option(options, "files")),
            check_every=float(_option(options, "check_every")),
            settle=float(_option(options, "settle")),
            done_suffix=_option(options, "done_file") or None,
            success_folder=None if delete else _joined(folder, move_to or DEFAULT_DONE_FOLDER),
            failure_folder=_joined(folder, str(_option(options, "after_failure_move_to"))),
            parallel_downloads=max(1, int(_option(options, "parallel_downloads"))),
            create_folders=bool(_option(options, "create_folders")),
        )

    def wanted(self, name: str, names: frozenset[str]) -> bool:
        """Whether a regular file called `name`, among `names` in the folder, may be taken."""
        return file_connector.file_is_wanted(name, names, self.pattern, self.done_suffix, _IGNORED_SUFFIXES)


class SftpSource:
    """Takes settled files from a remote folder; see the module docstring."""

    def __init__(self, session: SftpSession, settings: SourceSettings, readlog: ReadLog, clock: Clock) -> None:
        self.session = session
        self.settings = settings
        self.readlog = readlog
        self._clock = clock
        self._in_flight: set[str] = set()
        self._records: dict[str, ReadRecord] = {}
        self._prepared = False

    async def __aenter__(self) -> Self:
        await self.readlog.open()
        try:
            await self.session.connect()
        except BaseException:
            await self.readlog.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Files not acknowledged stay where they are and are taken again next time.
        try:
            await self.session.close()
        finally:
            await self.readlog.close()

    async def receive(self, *, once: bool) -> AsyncIterator[Inbound]:
        """Yield settled files in name order; with `once`, those settled now, then stop."""
        while True:
            if not self._prepared:
                await self._prepare_folders()
            first = await self._look()
            await self._forget_gone(first.names)
            if first.files:
                second = first
                if self.settings.settle > 0:
                    await self._clock.sleep(self.settings.settle)
                    second = await self._look()
                settled = sorted(n for n, look in second.files.items() if first.files.get(n) == look)
                async for inbound in self._take(settled, second.files):
                    yield inbound
            if once:
                return
            await self._clock.sleep(self.settings.check_every)

    async def _prepare_folders(self) -> None:
        s = self.settings
        await _ensure_folder(self.session, s.folder, s.create_folders, "the folder to watch")
        for target in (s.success_folder, s.failure_folder):
            if target is not None:
                await _ensure_folder(self.session, target, s.create_folders, "the folder to move files to")
        self._records = await self.readlog.records()
        self._prepared = True

    async def _look(self) -> _Listing:
        folder = self.settings.folder
        entries = await self.session.run("list", folder, lambda sftp: sftp.readdir(folder))
        names = frozenset(str(entry.filename) for entry in entries)
        files = {
            str(entry.filename): _Look(entry.attrs.size or 0, entry.attrs.mtime or 0)
            for entry in entries
            if entry.attrs.type == asyncssh.FILEXFER_TYPE_REGULAR and str(entry.filename) not in self._in_flight
            and self.settings.wanted(str(entry.filename), names)
        }
        return _Listing(files, names)

    async def _forget_gone(self, names: frozenset[str]) -> None:
        """Drop records of files no longer in the folder (moved, but the process stopped before forgetting)."""
        gone = [name for name in self._records if name not in names and name not in self._in_flight]
        if gone:
            await self.readlog.forget(*gone)
            for name in gone:
                del self._records[name]

    async def _take(self, names: list[str], looks: dict[str, _Look]) -> AsyncIterator[Inbound]:
        """Download `names` with up to `parallel downloads` in flight, yielding them in order."""
        queue = iter(names)
        pending: deque[asyncio.Task[_Download | None]] = deque()

        def start_next() -> None:
            name = next(queue, None)
            if name is not None:
                pending.append(asyncio.ensure_future(self._download(name, looks[name])))

        try:
            for _ in range(self.settings.parallel_downloads):
                start_next()
            while pending:
                download = await pending.popleft()
                start_next()
                if download is None:
                    continue
                inbound = await self._inbound(download)
                if inbound is not None:
                    yield inbound
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _download(self, name: str, look: _Look) -> _Download | None:
        path = posixpath.join(self.settings.folder, name)

        async def read(sftp: asyncssh.SFTPClient) -> bytes | None:
            # The listing gave the size, so no fstat round trip is needed; a small file comes in one read
            # request (block size 0), a large one in parallel requests.
            block_size = 0 if look.size <= SINGLE_READ_BYTES else -1
            try:
                async with sftp.open(path, "rb", block_size=block_size) as remote:
                    body = b""
                    while len(body) < look.size:  # a server may answer a request with fewer bytes
                        data = await remote.read(look.size - len(body))
                        if not data:
                            break
                        body += data
                    return body
            except asyncssh.SFTPNoSuchFile:
                return None

        try:
            body = await self.session.run("read", path, read)
        except PermanentError as error:
            # One unreadable file must not stop the others; it is tried again at the next look.
            log.warning("sftp source: skipping %s: %s", path, error)
            return None
        if body is None:
            log.info("sftp source: %s:%s disappeared before it could be read; skipped",
                     self.session.settings.address, path)
            return None
        if len(body) != look.size:
            log.info("sftp source: %s got shorter since it was listed; left for the next look", path)
            return None
        return _Download(name, look, body, hashlib.sha256(body).hexdigest())

    async def _inbound(self, download: _Download) -> Inbound | None:
        """The message for a downloaded file, or None when its record says it was processed already."""
        name, look = download.name, download.look
        record = self._records.get(name)
        # A record with the same name but another size, time or hash is about an older file: this one is new.
        if record is not None and record.matches(look.size, look.mtime, download.sha256):
            log.info("sftp source: %s was processed (%s) but not moved before; moving it now", name, record.outcome)
            self._in_flight.add(name)
            try:
                await self._finish(name, Outcome(record.outcome))
            except PermanentError as error:
                # One file that cannot be moved must not stop the others; the next look tries again.
                log.warning("sftp source: cannot finish %s: %s", name, error)
            finally:
                self._in_flight.discard(name)
            return None
        settings = self.session.settings
        path = posixpath.join(self.settings.folder, name)
        self._in_flight.add(name)
        return Inbound(
            body=download.body,
            message_id=derived_id("sftp", settings.host, str(settings.port), path, str(look.size), str(look.mtime)),
            meta={"file_name": name, "path": path, "host": settings.host, "size": look.size, "mtime": look.mtime},
            ack=partial(self._ack, download),
            release=partial(self._release, name),
        )

    async def _ack(self, download: _Download, outcome: Outcome) -> None:
        record = ReadRecord(download.name, download.look.size, download.look.mtime, download.sha256, outcome.value,
                            self._clock.now())
        # If the record cannot be written the name stays in flight: offering the file again at every look
        # would deliver it again and again. It is taken once more after a restart (at-least-once).
        await self.readlog.record(record)
        self._records[download.name] = record
        try:
            await self._finish(download.name, outcome)
        finally:
            # From here on the record keeps the file from being processed again: if the move failed, the
            # next look that finds the file finishes it.
            self._in_flight.discard(download.name)

    async def _finish(self, name: str, outcome: Outcome) -> None:
        s = self.settings
        path = posixpath.join(s.folder, name)
        target = s.success_folder if outcome.succeeded else s.failure_folder
        if target is None:
            await self.session.run("delete", path, lambda sftp: sftp.remove(path))
        else:
            await self._move(path, target)
        if s.done_suffix is not None:
            marker = path + s.done_suffix

            async def remove_marker(sftp: asyncssh.SFTPClient) -> None:
                with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                    await sftp.remove(marker)

            await self.session.run("delete", marker, remove_marker)
        await self.readlog.forget(name)
        self._records.pop(name, None)

    async def _move(self, path: str, folder: str) -> str:
        """Move `path` into `folder` under a free name and return where it went."""
        for candidate in _free_names(folder, posixpath.basename(path)):

            async def attempt(sftp: asyncssh.SFTPClient, candidate: str = candidate) -> bool:
                if await _exists(sftp, candidate):
                    return False
                try:
                    # A plain SFTP rename: OpenSSH refuses to replace an existing name, so a file that
                    # took the name since the check above is never overwritten.
                    await sftp.rename(path, candidate)
                except asyncssh.SFTPFailure:
                    if await _exists(sftp, candidate):
                        return False
                    raise
                return True

            if await self.session.run("move", path, attempt):
                return candidate
        raise AssertionError("unreachable: _free_names never ends")

    async def _release(self, name: str) -> None:
        self._in_flight.discard(name)


# ---- the sink ------------------------------------------------------------------------------------


def _checked_file_name(name: str) -> str:
    """The name, if it names a plain file inside the folder; refuses traversal and hidden names."""
    if not name or "/" in name or "\\" in name or "\x00" in name or name.startswith("."):
        raise PermanentError(
            f"sftp sink: {name!r} is not a usable file name (no folders, no leading dot)",
            code="SFT006", details={"file_name": name},
        )
    return name


# What _upload names its temporary files; one left by a process that died mid-upload is removed
# once it is older than STALE_UPLOAD_SECONDS (younger ones may be another instance's upload in flight).
_UPLOAD_TEMP = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")
STALE_UPLOAD_SECONDS = 3600.0


async def _upload(sftp: asyncssh.SFTPClient, folder: str, name: str, body: bytes) -> None:
    final = posixpath.join(folder, name)
    temp = posixpath.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        async with sftp.open(temp, "wb") as remote:
            await remote.write(body)
            with contextlib.suppress(asyncssh.SFTPOpUnsupported):
                await remote.fsync()
        try:
            await sftp.posix_rename(temp, final)
        except asyncssh.SFTPOpUnsupported:
            # SFTP v3 rename cannot replace: remove an older file first (the name is briefly missing,
            # never partial).
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.remove(final)
            await sftp.rename(temp, final)
    except (asyncssh.Error, OSError):
        with contextlib.suppress(asyncssh.Error, OSError):
            await sftp.remove(temp)
        raise


async def _remove_stale_uploads(sftp: asyncssh.SFTPClient, folder: str, now: float) -> list[str]:
    """Remove this sink's temporary files older than STALE_UPLOAD_SECONDS; returns their names."""
    removed = []
    for entry in await sftp.readdir(folder):
        name = str(entry.filename)
        mtime = entry.attrs.mtime
        if _UPLOAD_TEMP.fullmatch(name) and mtime is not None and now - mtime > STALE_UPLOAD_SECONDS:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):  # another instance cleaned it first
                await sftp.remove(posixpath.join(folder, name))
                removed.append(name)
    return removed


class SftpSink:
    """Uploads each message to its own file, atomically; see the module docstring."""

    def __init__(self, session: SftpSession, folder: str, create_folders: bool, clock: Clock) -> None:
        self.session = session
        self.folder = folder
        self._create_folders = create_folders
        self._clock = clock
        self._ready = False

    async def __aenter__(self) -> Self:
        await self.session.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def send(self, message: Message) -> None:
        """Upload the body under its final name; returns once the server renamed it into place."""
        if not isinstance(message.body, bytes | bytearray):
            raise PermanentError(
                f"sftp sink needs an encoded body (bytes), got {type(message.body).__name__}", code="SFT007")
        name = _checked_file_name(str(message.meta.get("file_name") or f"{message.message_id}.json"))
        if not self._ready:
            await _ensure_folder(self.session, self.folder, self._create_folders, "the folder to write to")
            removed = await self.session.run("clean", self.folder,
                                             partial(_remove_stale_uploads, folder=self.folder, now=self._clock.now()))
            if removed:
                log.warning("sftp sink: removed %d temporary file(s) left in %s by an upload that never finished: %s",
                            len(removed), self.folder, ", ".join(removed))
            self._ready = True
        await self.session.run("upload", posixpath.join(self.folder, name),
                               partial(_upload, folder=self.folder, name=name, body=bytes(message.body)))


def open_source(options: Mapping[str, Any], context: ConnectorContext) -> SftpSource:
    """An sftp source for resolved `options` (keys as in :data:`OPTIONS`)."""
    connection = ConnectionSettings.from_options(options, context)
    settings = SourceSettings.from_options(options)
    place = f"{connection.user}@{connection.address}:{settings.folder}"
    readlog = ReadLog(context.data_dir / READLOG_FILE, place)
    return SftpSource(SftpSession(connection), settings, readlog, context.clock)


def open_sink(options: Mapping[str, Any], context: ConnectorContext) -> SftpSink:
    """An sftp sink for resolved `options` (keys as in :data:`OPTIONS`)."""
    connection = ConnectionSettings.from_options(options, context)
    folder = posixpath.normpath(str(options["folder"]))
    return SftpSink(SftpSession(connection), folder, bool(_option(options, "create_folders")), context.clock)
