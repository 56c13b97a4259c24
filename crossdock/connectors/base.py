"""The small interface every connector implements, its declared option schema, and the registry.

A connector module (one per transport: file, queue, rest, amqp, sftp) opens with a docstring of its
features and options and exposes:

- `SPEC`: a :class:`ConnectorSpec` (roles, options, capability flags) read by lint, docs and runtime;
- `open_source(options, context) -> Source` when it can be a source;
- `open_sink(options, context) -> Sink` when it can be a sink.

Sources and sinks are async context managers. A source yields :class:`~crossdock.engine.message.Inbound`
items and acts on `ack(outcome)` only after the runtime says every sink confirmed; a sink's `send`
returns only once the peer confirmed (fsync + rename, publisher confirm, HTTP 2xx). Library exceptions
are mapped to :class:`~crossdock.engine.errors.TransientError` or
:class:`~crossdock.engine.errors.PermanentError` inside the connector, never leaked.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Protocol, Self, runtime_checkable

from crossdock.dsl.diagnostics import DiagnosticBag, Span, did_you_mean
from crossdock.dsl.options import OptionSpec, ResolvedOptions, Role
from crossdock.engine.clock import Clock, SystemClock
from crossdock.engine.message import Inbound, Message


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a connector can promise; the runtime and lint read these flags, never isinstance checks."""

    supports_confirm: bool = True
    dedupes_by_message_id: bool = False
    max_message_bytes: int | None = None


OptionCheck = Callable[[ResolvedOptions, Role, Span, DiagnosticBag], None]


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """A connector's declaration: what it is for and which options it takes.

    `check`, when set, is called by the compiler (so by lint and run alike) with a step's options merged
    over its connection's, the role, the span of the connector's name on the step and the diagnostic
    bag, for rules the option schema cannot say (such as "exactly one of these options").
    """

    kind: str
    description: str
    roles: frozenset[Role]
    options: tuple[OptionSpec, ...]
    connection: Literal["required", "optional", "none"] = "optional"
    capabilities: Capabilities = Capabilities()
    check: OptionCheck | None = None


@dataclass
class ConnectorContext:
    """What a connector may use besides its options: where data and route files live, the clock."""

    owner: str
    data_dir: Path = Path("data")
    base_dir: Path = Path(".")
    clock: Clock = field(default_factory=SystemClock)
    shared: dict[str, Any] = field(default_factory=dict)
    """Resources the connectors of one engine share, by a key each connector chooses (the HTTP
    server that every `from http` route of a listen address registers with, say). One dict per
    engine, never global: two engines in one process (tests) do not see each other's."""

    def resolve_path(self, value: str) -> Path:
        """A path from a route file: relative ones are taken from the data folder (`--data`).

        So one set of route files runs unchanged in a test's temporary folder, on a laptop and under
        /var/lib/crossdock: only `--data` (or $CROSSDOCK_DATA) changes.
        """
        path = Path(value)
        return path if path.is_absolute() else self.data_dir / path


SWAPPING_KEY = "swapping"
"""Set (to True) in `ConnectorContext.shared` while the engine swaps routes for a reload: a shared
resource whose last user leaves then may stay open for the new version of the route."""


@runtime_checkable
class SharedResource(Protocol):
    """Something kept in `ConnectorContext.shared` that a reload may leave with nobody using it."""

    async def settle(self) -> None:
        """Called once a reload's new routes have started: close what stayed open and nobody took back."""
        ...


class Source(Protocol):
    """Receives messages; see the module docstring for the acknowledgment contract."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def receive(self, *, once: bool) -> AsyncIterator[Inbound]:
        """Yield what arrives; with `once`, yield what is there now and stop."""
        ...


class Sink(Protocol):
    """Delivers messages whose body is already encoded to bytes."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def send(self, message: Message) -> None:
        """Deliver and return only when the peer confirmed."""
        ...


class ConnectorModule(Protocol):
    """What a connector module exposes (see the module docstring)."""

    SPEC: ConnectorSpec

    def open_source(self, options: Mapping[str, Any], context: ConnectorContext) -> Source: ...

    def open_sink(self, options: Mapping[str, Any], context: ConnectorContext) -> Sink: ...


# Names to modules, imported on first use so that lint never pays for a transport library it does not need.
_REGISTRY: dict[str, str] = {
    "amqp": "crossdock.connectors.amqp",
    "file": "crossdock.connectors.file",
    "http": "crossdock.connectors.http",
    "queue": "crossdock.connectors.queue",
    "rest": "crossdock.connectors.rest",
    "sftp": "crossdock.connectors.sftp",
}


class UnknownConnector(LookupError):
    """No connector of that kind is registered."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.hint = did_you_mean(kind, _REGISTRY)
        super().__init__(f"unknown connector '{kind}'" + (f"; {self.hint}" if self.hint else ""))


def connector_kinds() -> list[str]:
    """Every registered connector kind."""
    return sorted(_REGISTRY)


def load_connector(kind: str) -> ConnectorModule:
    """The module implementing `kind`; raises :class:`UnknownConnector`."""
    try:
        module_name = _REGISTRY[kind]
    except KeyError:
        raise UnknownConnector(kind) from None
    module: ModuleType = importlib.import_module(module_name)
    return module  # type: ignore[return-value]


def connector_spec(kind: str) -> ConnectorSpec:
    """The declared spec of `kind`."""
    return load_connector(kind).SPEC
