"""Hot reload: `crossdock run --watch` swaps in edited route files that lint clean.

:class:`RouteWatcher` looks at the modification time and size of every file under the route folders
once a second (anyio; no file-system notification library, so it works the same on every platform
and on network mounts). When something changed and then stayed the same for one more look (an editor
that writes a file in several steps is not caught half-way), it lints the folders again:

- **clean** (no error, every env and secret set): the new plan goes to :meth:`Engine.apply
  <crossdock.engine.engine.Engine.apply>`. New routes start, removed routes stop after draining, and
  a changed route stops receiving, finishes and acknowledges what it holds, and only then starts in
  its new version. Sources keep a message until it is acknowledged and `skip duplicates` and the
  sinks' message ids keep copies out, so nothing is lost or sent twice. Routes whose text and whose
  connections, maps, policies, partners and tables are unchanged keep running untouched.
- **not clean**: the routes running now keep running; every error is logged with its code and
  position, and kept in ``engine.reload_status`` (with the time, and a count of failed reloads) for
  the console and the metrics.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import Diagnostic, Severity, Span
from crossdock.dsl.lint import lint, unset_references
from crossdock.dsl.project import Project
from crossdock.engine.engine import Engine, RouteChanges

POLL_SECONDS = 1.0

log = logging.getLogger("crossdock.reload")

Snapshot = dict[str, tuple[int, int]]
"""Path -> (modification time in ns, size) of every file watched."""


@dataclass
class ReloadStatus:
    """The outcome of the last reload, for the console and the metrics (`engine.reload_status`)."""

    at: float
    """When the reload was tried (epoch seconds, the engine's clock)."""
    ok: bool
    diagnostics: list[Diagnostic] = field(default_factory=list)
    """Why it was refused: the lint errors (and unset env/secrets), each with code and position."""
    changes: RouteChanges = field(default_factory=RouteChanges)
    reloads: int = 0
    """Reloads tried since the engine started."""
    failures: int = 0
    """Reloads refused since the engine started (`crossdock_reload_failures_total`)."""


class RouteWatcher:
    """Watches the route folders of a running engine and reloads it (see the module docstring).

    `project` is what the engine's plan was compiled from: the first change is compared with it.
    """

    def __init__(self, paths: Sequence[str | Path], engine: Engine, project: Project, *,
                 interval: float = POLL_SECONDS, env: Mapping[str, str] | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.engine = engine
        self.interval = interval
        self.env = env
        self.fingerprints = fingerprints(project)
        self.reloads = 0
        self.failures = 0
        # Taken now, right after the lint that built the engine's plan, so an edit made before the
        # watcher's task gets going is still a change.
        self.current = self.snapshot()

    def snapshot(self) -> Snapshot:
        """The modification time and size of every file under the watched paths (hidden ones left out)."""
        seen: Snapshot = {}
        for root in self.paths:
            candidates = [root] if root.is_file() else root.rglob("*")
            for path in candidates:
                if any(part.startswith(".") for part in path.parts[len(root.parts):]):
                    continue
                try:
                    stat = path.stat()
                except OSError:  # deleted while we looked: the next look says so
                    continue
                if path.is_file():
                    seen[str(path)] = (stat.st_mtime_ns, stat.st_size)
        return seen

    async def run(self, stop: anyio.Event) -> None:
        """Look every `interval` seconds until `stop`; reload after a change that has settled."""
        pending: Snapshot | None = None
        while not stop.is_set():
            with anyio.move_on_after(self.interval):
                await stop.wait()
            if stop.is_set():
                return
            now = await anyio.to_thread.run_sync(self.snapshot)
            if now != self.current and now == pending:
                self.current, pending = now, None
                await self.reload()
            elif now != self.current:
                pending = now

    async def reload(self) -> ReloadStatus:
        """Lint the folders now and swap the result in when it is clean; the outcome is also kept in
        ``engine.reload_status``."""
        self.reloads += 1
        try:
            result = await anyio.to_thread.run_sync(lint, self.paths)
        except Exception as error:  # a bug in lint must not take the running routes down with it
            log.exception("reload: lint failed")
            result = None
            where = Span(str(self.paths[0]), 0, 0)
            problems = [Diagnostic("DSL000", f"internal error while reloading: {error!r}", where)]
        else:
            problems = [d for d in result.diagnostics if d.severity is Severity.ERROR]
            if not problems and result.plan is not None:
                problems = [_unset(reference) for reference in unset_references(result.plan, self.env)]
        at = self.engine.services.clock.now()
        if problems or result is None or result.plan is None:
            self.failures += 1
            for diagnostic in problems:
                log.error("reload refused, the routes running now go on: %s: %s %s: %s", diagnostic.span,
                          diagnostic.code, diagnostic.severity.value, diagnostic.message)
            status = ReloadStatus(at, False, problems, reloads=self.reloads, failures=self.failures)
        else:
            new = fingerprints(result.project)
            changed = [name for name, digest in new.items() if self.fingerprints.get(name) not in (None, digest)]
            changes = await self.engine.apply(result.plan, changed)
            self.fingerprints = new
            if changes:
                log.info("reloaded: %d route(s) added %s, %d removed %s, %d changed %s",
                         len(changes.added), changes.added, len(changes.removed), changes.removed,
                         len(changes.changed), changes.changed)
            status = ReloadStatus(at, True, changes=changes, reloads=self.reloads, failures=self.failures)
        self.engine.reload_status = status
        return status


def _unset(reference: Any) -> Diagnostic:
    code, what = ("ENV001", "environment variable") if reference.source == "env" else ("SEC001", "secret")
    return Diagnostic(code, f"{what} '{reference.name}' is not set", reference.span)


# ---- what a route depends on ---------------------------------------------------------------------


def fingerprints(project: Project) -> dict[str, str]:
    """A digest per route of everything its running version depends on.

    That is its own text (spans left out: moving a route or editing a comment changes nothing) and the
    definitions it names, directly or through them: connections, maps, policies, partners; plus every
    shared table and the CSV files tables read, which expressions anywhere may use.
    """
    named: dict[str, list[Any]] = {}
    for kind in (project.connections, project.maps, project.policies, project.partners):
        for name, definition in kind.items():
            named.setdefault(name, []).append(definition)
    tables = sorted(project.tables.items())
    digests: dict[str, str] = {}
    for name, route in project.routes.items():
        used: dict[int, Any] = {}
        queue: list[Any] = [route]
        while queue:
            for word in _strings(queue.pop()):
                for definition in named.get(word, ()):
                    if id(definition) not in used:
                        used[id(definition)] = definition
                        queue.append(definition)
        parts = [route, *sorted(used.values(), key=lambda d: (type(d).__name__, d.name)), *(t for _, t in tables)]
        digests[name] = hashlib.sha256(repr([_plain(part) for part in parts]).encode()).hexdigest()
    return digests


def _plain(node: Any) -> Any:
    """`node` as nested tuples without source positions, CSV tables with their file's digest."""
    if isinstance(node, ast.Table) and node.csv is not None:
        path = Path(node.span.file).parent / node.csv.value
        try:
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            content = None
        return ("Table", _plain(node.name), node.csv.value, _plain(node.csv_options), content)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return (type(node).__name__, *(_plain(getattr(node, f.name)) for f in dataclasses.fields(node)
                                       if not f.name.endswith("span")))
    if isinstance(node, tuple | list):
        return tuple(_plain(item) for item in node)
    if isinstance(node, str | int | float | bool | Decimal) or node is None:
        return node
    return repr(node)


def _strings(node: Any) -> Iterable[str]:
    """Every string written in `node` (names of definitions are strings: `map with "X"`, `to file "Y"`)."""
    if isinstance(node, str):
        yield node
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            if not f.name.endswith("span"):
                yield from _strings(getattr(node, f.name))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _strings(item)
