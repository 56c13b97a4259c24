"""The engine's :class:`~crossdock.ops.StageObserver`: stage logs, metrics and (when on) traces.

Every Engine makes one and its runners report to it. The work per call is a few dictionary lookups
and counter increments; spans are made only when :attr:`Telemetry.tracing` is set
(`crossdock run` sets it from the OTEL_ environment variables, tests set an in-memory one).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crossdock.ops import NOTHING
from crossdock.ops.logging import StageLog
from crossdock.ops.metrics import EngineMetrics

if TYPE_CHECKING:
    from crossdock.engine.engine import Engine
    from crossdock.engine.message import Message
    from crossdock.engine.plan import RoutePlan, StepPlan
    from crossdock.ops.tracing import Scope, Tracing

# What the metrics and spans call each kind of step that runs on its own (split, choice and fan-out
# only hand messages on to the steps inside them), by plan class; others: the class name, lowercased.
STEP_KINDS = {
    "ReadPlan": "read", "FilterPlan": "filter", "DedupePlan": "dedupe", "TrackPlan": "track", "MapPlan": "map",
    "ValidatePlan": "validate", "SinkPlan": "deliver", "CallPlan": "call", "ReplyPlan": "reply",
    "AcknowledgePlan": "acknowledge",
}


def step_kind(step: StepPlan) -> str:
    """`read`, `map`, `deliver`... for a step (see :data:`STEP_KINDS`)."""
    name = type(step).__name__
    return STEP_KINDS.get(name) or name.removesuffix("Plan").lower()


class Telemetry:
    """Logs, metrics and traces of one engine (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.metrics = EngineMetrics(engine)
        self.log = StageLog()
        self.tracing: Tracing | None = None
        self.clock = engine.services.clock
        self._sources: dict[str, str] = {}
        self._stages: dict[tuple[str, type], tuple[str, Any]] = {}
        self._totals: dict[str, Any] = {}

    def route_started(self, route: RoutePlan) -> None:
        self._sources[route.name] = f"from {route.source.label}"
        self.metrics.route_started(route)

    def route_stopped(self, route: str) -> None:
        self.metrics.route_stopped(route)

    def message(self, route: str, message: Message) -> _MessageScope:
        return _MessageScope(self, route, message)

    def step(self, route: str, step: StepPlan, message: Message) -> _StepScope:
        key = (route, type(step))
        found = self._stages.get(key)
        if found is None:
            kind = step_kind(step)
            found = self._stages[key] = (kind, self.metrics.stage_seconds.labels(route, kind))
        return _StepScope(self, route, step, message, found[0], found[1])

    def attempt(self, route: str, step: StepPlan, message: Message) -> Any:
        tracing = self.tracing
        return NOTHING if tracing is None else _AttemptScope(tracing, step, message)

    def event(self, route: str, event: str, step: str | None, message: Message, detail: Mapping[str, Any]) -> None:
        if step is None and event == "received":
            step = self._sources.get(route)
        self.metrics.count(event, route, step)
        self.log.event(route, event, step, message, detail)
        if self.tracing is not None:
            self.tracing.event(event, step, detail)

    def total_timer(self, route: str) -> Any:
        """The histogram child timing whole messages of `route`."""
        child = self._totals.get(route)
        if child is None:
            child = self._totals[route] = self.metrics.message_seconds.labels(route)
        return child


class _MessageScope:
    """One source message in flight: counted as such, timed, and the root span when tracing."""

    __slots__ = ("_message", "_route", "_scope", "_started", "_telemetry")

    def __init__(self, telemetry: Telemetry, route: str, message: Message) -> None:
        self._telemetry = telemetry
        self._route = route
        self._message = message
        self._scope: Scope | None = None
        self._started = 0.0

    def __enter__(self) -> None:
        telemetry = self._telemetry
        telemetry.metrics.in_flight.setdefault(self._route, {})[self] = telemetry.clock.monotonic()
        if telemetry.tracing is not None:
            self._scope = telemetry.tracing.message(self._route, self._message)
        self._started = time.perf_counter()

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        telemetry = self._telemetry
        telemetry.total_timer(self._route).observe(time.perf_counter() - self._started)
        telemetry.metrics.in_flight[self._route].pop(self, None)
        if self._scope is not None:
            self._scope.close(error)


class _StepScope:
    """One step on one message: timed into its kind's histogram, and a span when tracing."""

    __slots__ = ("_kind", "_message", "_route", "_scope", "_started", "_step", "_telemetry", "_timer")

    def __init__(self, telemetry: Telemetry, route: str, step: StepPlan, message: Message, kind: str,
                 timer: Any) -> None:
        self._telemetry = telemetry
        self._route = route
        self._step = step
        self._message = message
        self._kind = kind
        self._timer = timer
        self._scope: Scope | None = None
        self._started = 0.0

    def __enter__(self) -> None:
        tracing = self._telemetry.tracing
        if tracing is not None:
            self._scope = tracing.step(self._route, self._step, self._kind, self._message)
        self._started = time.perf_counter()

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        self._timer.observe(time.perf_counter() - self._started)
        if self._scope is not None:
            self._scope.close(error)


class _AttemptScope:
    """One try at a sink as a span, current while it runs; an exception leaving it marks it failed."""

    __slots__ = ("_message", "_scope", "_step", "_tracing")

    def __init__(self, tracing: Tracing, step: StepPlan, message: Message) -> None:
        self._tracing = tracing
        self._step = step
        self._message = message
        self._scope: Scope | None = None

    def __enter__(self) -> None:
        self._scope = self._tracing.attempt(self._step, self._message)

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        if self._scope is not None:
            self._scope.close(error)
