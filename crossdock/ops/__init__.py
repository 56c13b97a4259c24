"""Operating crossdock: lineage (`crossdock trace`), hot reload, logs, metrics, traces and the console.

The runtime reports what happens to messages through one small interface, :class:`StageObserver`,
called at every stage transition; :class:`crossdock.ops.telemetry.Telemetry` implements it for an
Engine (stage logs, Prometheus metrics, OpenTelemetry spans). This module stays light on purpose:
the engine imports it, and nothing here imports the engine or a metrics or tracing library.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from crossdock.engine.message import Message
    from crossdock.engine.plan import RoutePlan, StepPlan


class StageObserver(Protocol):
    """What the runtime tells about its work; every call is synchronous and must be cheap.

    The context managers bracket work in the task doing it, so an implementation may make a span
    current for its duration (an outbound call inside `attempt` carries it in its headers).
    """

    def route_started(self, route: RoutePlan) -> None:
        """The route's connectors are open and its source is about to receive."""
        ...

    def route_stopped(self, route: str) -> None:
        """The route stopped receiving and finished (or released) what it held."""
        ...

    def message(self, route: str, message: Message) -> AbstractContextManager[Any]:
        """Brackets one source message, from receiving it to acknowledging (or releasing) it."""
        ...

    def step(self, route: str, step: StepPlan, message: Message) -> AbstractContextManager[Any]:
        """Brackets one step run on a message (split children and branches each run their own)."""
        ...

    def attempt(self, route: str, step: StepPlan, message: Message) -> AbstractContextManager[Any]:
        """Brackets one try at sending to a sink; an exception leaving it is that try's failure."""
        ...

    def event(self, route: str, event: str, step: str | None, message: Message, detail: Mapping[str, Any]) -> None:
        """A stage transition (received, decoded, mapped, delivered, retried, dead-lettered...), as journaled."""
        ...


class _Nothing:
    """A context manager that does nothing, shared (it keeps no state)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


NOTHING = _Nothing()


class NullObserver:
    """Observes nothing: what a runner reports to when no engine installed its telemetry."""

    def route_started(self, route: RoutePlan) -> None:
        return None

    def route_stopped(self, route: str) -> None:
        return None

    def message(self, route: str, message: Message) -> _Nothing:
        return NOTHING

    def step(self, route: str, step: StepPlan, message: Message) -> _Nothing:
        return NOTHING

    def attempt(self, route: str, step: StepPlan, message: Message) -> _Nothing:
        return NOTHING

    def event(self, route: str, event: str, step: str | None, message: Message, detail: Mapping[str, Any]) -> None:
        return None


NULL_OBSERVER = NullObserver()
