"""The `file` connector: local (or mounted) folders as a source and as a sink.

Features
- Source: polls a folder for files matching a glob and takes them in name order, only once they have
  settled (same size and modification time across two looks `settle` apart). Hidden files and names
  ending in .tmp, .part or .crdownload are never taken, nor are sub-folders. With `done file`, a file
  is taken only when its marker (`orders.json` + `.done`) exists; the marker is removed with the file.
- Acknowledgment: after success the file is moved to `after success move to` (default: a `done`
  sub-folder) or deleted with `after success delete`; after dead-lettering it is moved to
  `after failure move to` (default: a `failed` sub-folder). Relative move targets are taken from the
  watched folder (as Camel's file component does), absolute ones as they are. A move never overwrites:
  on a name clash the file becomes `orders-1.json`, `orders-2.json`... Moves and deletes are fsynced.
  A file stays in the folder until it is acknowledged, so a crash means it is received again.
- Sink: writes the message body to a dot-prefixed temporary file in the folder, fsyncs it, renames it
  to its final name and fsyncs the folder, so readers never see a partial file under the final name.
  Writing the same name again replaces the file: deterministic names make redelivery harmless.
  The name is `message.meta["file_name"]` (the runtime renders `file name` there), else
  `<message id>.json`; a name with a path separator or a leading dot is refused.

Options (on the connection or on the step)
    folder                  the folder to watch or write to (required)
    files                   source: a glob of names to take, default "*"
    check every             source: how often to look, default 2s
    settle                  source: how long a file must stay unchanged, default 0.5s
    done file               source: take a file only when this marker suffix exists next to it
    after success move to   source: where processed files go, default the `done` sub-folder
    after success delete    source: delete processed files instead of moving them
    after failure move to   source: where dead-lettered files go, default the `failed` sub-folder
    file name               sink: a template for the name of each file, default "{{ message_id }}{{ extension }}"
                            (the extension of the format written: .json, .x12...)
    create folders          create missing folders, default yes

Error codes: FIL001 a folder is missing and `create folders` is off; FIL002 a refused file name;
FIL003 an OS error retrying cannot help (permission denied, name too long, read-only filesystem);
FIL004 both `after success move to` and `after success delete`; FIL005 a body that is not bytes;
FIL010 a transient OS error (disk full, I/O error, folder gone, timeout).
"""

from __future__ import annotations

import errno
import fnmatch
import itertools
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Self

import anyio.to_thread

from crossdock.connectors.base import Capabilities, ConnectorContext, ConnectorSpec
from crossdock.dsl.options import OptionSpec, OptionType, Role
from crossdock.engine.clock import Clock
from crossdock.engine.errors import CrossdockError, PermanentError, TransientError, TransientKind
from crossdock.engine.message import Inbound, Message, Outcome, derived_id

log = logging.getLogger(__name__)

_SOURCE = frozenset({Role.SOURCE})
_SINK = frozenset({Role.SINK})

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("folder", OptionType.STRING, "The folder to watch (source) or to write files to (sink).",
               example='"data/inbox/orders"', required=True),
    OptionSpec("files", OptionType.STRING, "Which file names to take, as a glob (* and ? wildcards).",
               default="*", example='"*.x12"', roles=_SOURCE),
    OptionSpec("check every", OptionType.DURATION, "How often to look in the folder for new files.",
               default=2.0, example="30s", roles=_SOURCE),
    OptionSpec("settle", OptionType.DURATION,
               "How long a file's size and modification time must stay unchanged before it is taken, "
               "so that files still being written are left alone.",
               default=0.5, example="2s", roles=_SOURCE),
    OptionSpec("done file", OptionType.STRING,
               "Take a file only once a marker file with this suffix exists next to it "
               "(orders.json is taken when orders.json.done exists); the marker is removed afterwards.",
               example='".done"', roles=_SOURCE),
    OptionSpec("after success move to", OptionType.STRING,
               "Where to move a file once it was delivered (default: a `done` sub-folder); "
               "a relative folder is taken from the watched folder.",
               example='"archive"', roles=_SOURCE),
    OptionSpec("after success delete", OptionType.BOOLEAN,
               "Delete a file once it was delivered instead of moving it.",
               default=False, example="yes", roles=_SOURCE),
    OptionSpec("after failure move to", OptionType.STRING,
               "Where to move a file whose message was dead-lettered; "
               "a relative folder is taken from the watched folder.",
               default="failed", example='"rejected"', roles=_SOURCE),
    OptionSpec("file name", OptionType.TEMPLATE,
               "The name of each written file, rendered per message; it must not contain a folder.",
               default="{{ message_id }}{{ extension }}", example='"{{ po_number }}.json"', roles=_SINK),
    OptionSpec("create folders", OptionType.BOOLEAN,
               "Create missing folders (the watched or target folder and the move targets).",
               default=True, example="no"),
)

SPEC = ConnectorSpec(
    kind="file",
    description="Local or mounted folders: take files from one, write files to another.",
    roles=frozenset({Role.SOURCE, Role.SINK}),
    options=OPTIONS,
    connection="optional",
    capabilities=Capabilities(supports_confirm=True),
)

DEFAULT_DONE_FOLDER = "done"
_IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload")
_PERMANENT_ERRNOS = frozenset({
    errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.EINVAL, errno.EISDIR, errno.ENOTDIR,
    errno.EROFS, errno.EEXIST, errno.ELOOP,
})
_TIMEOUT_ERRNOS = frozenset({errno.ETIMEDOUT})
# Filesystems where a hard link cannot make a no-overwrite move: another device, FAT, some network shares.
_NO_HARD_LINK_ERRNOS = frozenset({errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK})


def _option(options: Mapping[str, Any], key: str) -> Any:
    """The option's value, or its declared default when the runtime left it out."""
    if key in options:
        return options[key]
    return next(spec.default for spec in OPTIONS if spec.key == key)


def classify_os_error(error: OSError, action: str, path: Path) -> CrossdockError:
    """A classified error for `error`, raised while trying to `action` (`write`, `move`...) `path`."""
    reason = error.strerror or str(error)
    message = f"cannot {action} {path}: {reason}"
    details = {"path": str(path), "errno": errno.errorcode.get(error.errno or 0, str(error.errno))}
    if error.errno in _PERMANENT_ERRNOS:
        return PermanentError(message, code="FIL003", details=details)
    kind = TransientKind.TIMEOUT if error.errno in _TIMEOUT_ERRNOS else TransientKind.UNAVAILABLE
    return TransientError(message, kind=kind, code="FIL010", details=details)


def _ensure_folder(folder: Path, create: bool, purpose: str) -> None:
    if folder.is_dir():
        return
    if not create:
        raise PermanentError(f"{purpose} {folder} does not exist (create it, or set 'create folders')",
                             code="FIL001", details={"path": str(folder)})
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise classify_os_error(exc, "create folder", folder) from exc


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some filesystems (network shares) cannot fsync a folder; the rename is as durable as they allow.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _free_names(folder: Path, name: str) -> Iterator[Path]:
    """`folder/name`, then `folder/stem-1.suffix`, `-2`... for moves that must not overwrite."""
    yield folder / name
    stem, suffix = os.path.splitext(name)
    for n in itertools.count(1):
        yield folder / f"{stem}-{n}{suffix}"


def move_without_overwrite(source: Path, folder: Path) -> Path:
    """Move `source` into `folder` under a free name and return where it went.

    A hard link fails when the name exists, so another writer can never be overwritten; where links are
    not possible the name is checked first and the file moved (or copied across devices).
    """
    for target in _free_names(folder, source.name):
        try:
            os.link(source, target)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINK_ERRNOS:
                raise
            if target.exists():
                continue
            shutil.move(source, target)
        else:
            os.unlink(source)
        _fsync_folder(folder)
        _fsync_folder(source.parent)
        return target
    raise AssertionError("unreachable: _free_names never ends")


def file_is_wanted(name: str, names: Collection[str], pattern: str, done_suffix: str | None,
                   ignored_suffixes: tuple[str, ...]) -> bool:
    """Whether a file called `name`, among `names` in its folder, may be taken: not hidden or a
    temporary upload, matching the glob (case-sensitive), and with its done-file when one is asked for.
    The sftp connector applies the same rule to remote folders."""
    if name.startswith(".") or name.lower().endswith(ignored_suffixes):
        return False
    if not fnmatch.fnmatchcase(name, pattern):
        return False
    if done_suffix is None:
        return True
    return not name.endswith(done_suffix) and name + done_suffix in names


@dataclass(frozen=True, slots=True)
class _Look:
    """What one look at a file saw; a file is settled when two looks agree."""

    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """The file source's options, resolved to paths and numbers."""

    folder: Path
    pattern: str
    check_every: float
    settle: float
    done_suffix: str | None
    success_folder: Path | None  # None: delete after success
    failure_folder: Path
    create_folders: bool

    @classmethod
    def from_options(cls, options: Mapping[str, Any], context: ConnectorContext) -> SourceSettings:
        folder = context.resolve_path(str(options["folder"]))
        move_to = _option(options, "after_success_move_to")
        delete = bool(_option(options, "after_success_delete"))
        if delete and move_to:
            raise PermanentError("file source: set either 'after success move to' or 'after success delete'",
                                 code="FIL004")
        return cls(
            folder=folder,
            pattern=str(_option(options, "files")),
            check_every=float(_option(options, "check_every")),
            settle=float(_option(options, "settle")),
            done_suffix=_option(options, "done_file") or None,
            success_folder=None if delete else folder / (move_to or DEFAULT_DONE_FOLDER),
            failure_folder=folder / str(_option(options, "after_failure_move_to")),
            create_folders=bool(_option(options, "create_folders")),
        )

    def wanted(self, name: str, names: set[str]) -> bool:
        """Whether a regular file called `name`, among `names` in the folder, may be taken."""
        return file_is_wanted(name, names, self.pattern, self.done_suffix, _IGNORED_SUFFIXES)


class FileSource:
    """Takes settled files from a folder; see the module docstring."""

    def __init__(self, settings: SourceSettings, clock: Clock) -> None:
        self.settings = settings
        self._clock = clock
        self._in_flight: set[str] = set()

    async def __aenter__(self) -> Self:
        await anyio.to_thread.run_sync(self._prepare_folders)
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Files not acknowledged stay where they are and are taken again next time.
        return None

    def _prepare_folders(self) -> None:
        s = self.settings
        _ensure_folder(s.folder, s.create_folders, "the folder to watch")
        for target in (s.success_folder, s.failure_folder):
            if target is not None:
                _ensure_folder(target, s.create_folders, "the folder to move files to")

    async def receive(self, *, once: bool) -> AsyncIterator[Inbound]:
        """Yield settled files in name order; with `once`, those settled now, then stop."""
        while True:
            first = await self._look()
            if first:
                second = first
                if self.settings.settle > 0:
                    await self._clock.sleep(self.settings.settle)
                    second = await self._look()
                for name in sorted(n for n, look in second.items() if first.get(n) == look):
                    inbound = await self._take(name, second[name])
                    if inbound is not None:
                        yield inbound
            if once:
                return
            await self._clock.sleep(self.settings.check_every)

    async def _look(self) -> dict[str, _Look]:
        try:
            found = await anyio.to_thread.run_sync(self._scan)
        except OSError as exc:
            raise classify_os_error(exc, "list folder", self.settings.folder) from exc
        return {name: look for name, look in found.items() if name not in self._in_flight}

    def _scan(self) -> dict[str, _Look]:
        with os.scandir(self.settings.folder) as listing:
            entries = list(listing)
        names = {entry.name for entry in entries}
        found: dict[str, _Look] = {}
        for entry in entries:
            if not self.settings.wanted(entry.name, names):
                continue
            try:
                if not entry.is_file():
                    continue
                stat = entry.stat()
            except FileNotFoundError:
                continue  # removed between listing and stat
            if stat.st_nlink > 1 and self._finish_interrupted_move(entry.name, stat):
                continue
            found[entry.name] = _Look(stat.st_size, stat.st_mtime_ns)
        return found

    def _finish_interrupted_move(self, name: str, stat: os.stat_result) -> bool:
        """Whether `name` is a file whose move to the done or failed folder was cut short (crossdock was
        killed between the hard link and the unlink): it was processed and acknowledged already, so the
        move is finished now instead of the file being offered again."""
        for folder in (self.settings.success_folder, self.settings.failure_folder):
            if folder is None or not folder.is_dir():
                continue
            with os.scandir(folder) as listing:
                moved = next((e for e in listing if e.is_file() and e.inode() == stat.st_ino), None)
            if moved is not None and os.stat(moved.path).st_dev == stat.st_dev:
                os.unlink(self.settings.folder / name)
                _fsync_folder(self.settings.folder)
                log.info("file source: finished moving %s to %s after an interrupted run", name, moved.path)
                return True
        return False

    async def _take(self, name: str, look: _Look) -> Inbound | None:
        path = self.settings.folder / name
        try:
            body = await anyio.to_thread.run_sync(path.read_bytes)
        except FileNotFoundError:
            return None  # someone else took it since the last look
        except OSError as exc:
            # One unreadable file must not stop the others; it is tried again at the next look.
            log.warning("file source: cannot read %s: %s", path, exc.strerror or exc)
            return None
        self._in_flight.add(name)
        return Inbound(
            body=body,
            message_id=derived_id(str(path.absolute()), str(look.size), str(look.mtime_ns)),
            meta={"file_name": name, "path": str(path)},
            ack=partial(self._ack, name),
            release=partial(self._release, name),
        )

    async def _ack(self, name: str, outcome: Outcome) -> None:
        path = self.settings.folder / name
        try:
            await anyio.to_thread.run_sync(self._finish, path, outcome)
        except OSError as exc:
            # The name stays in flight: offering the file again at every look would deliver it again
            # and again. It is taken once more after a restart (at-least-once).
            raise classify_os_error(exc, "move or delete", path) from exc
        self._in_flight.discard(name)

    def _finish(self, path: Path, outcome: Outcome) -> None:
        s = self.settings
        target = s.success_folder if outcome.succeeded else s.failure_folder
        if target is None:
            path.unlink()
            _fsync_folder(path.parent)
        else:
            _ensure_folder(target, s.create_folders, "the folder to move files to")
            move_without_overwrite(path, target)
        if s.done_suffix is not None:
            path.with_name(path.name + s.done_suffix).unlink(missing_ok=True)

    async def _release(self, name: str) -> None:
        self._in_flight.discard(name)


def _checked_file_name(name: str) -> str:
    """The name, if it names a plain file inside the folder; refuses traversal and hidden names."""
    if not name or "/" in name or "\\" in name or "\x00" in name or name.startswith("."):
        raise PermanentError(
            f"file sink: {name!r} is not a usable file name (no folders, no leading dot)",
            code="FIL002", details={"file_name": name},
        )
    return name


def _write_atomically(folder: Path, name: str, body: bytes) -> None:
    final = folder / name
    temp = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
        _fsync_folder(folder)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise classify_os_error(exc, "write", final) from exc


class FileSink:
    """Writes each message to its own file, atomically; see the module docstring."""

    def __init__(self, folder: Path, create_folders: bool) -> None:
        self.folder = folder
        self._create_folders = create_folders

    async def __aenter__(self) -> Self:
        await anyio.to_thread.run_sync(_ensure_folder, self.folder, self._create_folders,
                                       "the folder to write to")
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, message: Message) -> None:
        """Write the body under its final name; returns once the file and its name are on disk."""
        if not isinstance(message.body, bytes | bytearray):
            raise PermanentError(
                f"file sink needs an encoded body (bytes), got {type(message.body).__name__}", code="FIL005")
        name = _checked_file_name(str(message.meta.get("file_name") or f"{message.message_id}.json"))
        await anyio.to_thread.run_sync(_write_atomically, self.folder, name, bytes(message.body))


def open_source(options: Mapping[str, Any], context: ConnectorContext) -> FileSource:
    """A file source for resolved `options` (keys as in :data:`OPTIONS`)."""
    return FileSource(SourceSettings.from_options(options, context), context.clock)


def open_sink(options: Mapping[str, Any], context: ConnectorContext) -> FileSink:
    """A file sink for resolved `options` (keys as in :data:`OPTIONS`)."""
    folder = context.resolve_path(str(options["folder"]))
    return FileSink(folder, bool(_option(options, "create_folders")))
