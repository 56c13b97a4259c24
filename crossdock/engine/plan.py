"""The compiled form of routes: what the runtime executes, built by :mod:`crossdock.engine.compiler`.

A plan holds no open resources; connectors are opened from it when a route starts. Every step keeps
its `path` (its position in the route, such as `4/when0/0`), which the dead-letter store records so
that a replay resumes exactly at the step that failed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import Span
from crossdock.dsl.options import ResolvedOptions
from crossdock.engine.errors import TransientKind
from crossdock.engine.mapping.compiler import CompiledMap
from crossdock.engine.mapping.expressions import Getter
from crossdock.formats.x12.profile import PartnerProfile


@dataclass(frozen=True)
class RetryPlan:
    """How a failing delivery is retried: `retries` more attempts after the first, spaced by backoff."""

    retries: int = 3
    backoff: str = "exponential"
    initial: float = 1.0
    maximum: float = 60.0
    jitter: bool = True
    retry_on: frozenset[TransientKind] = frozenset(TransientKind)

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        Exponential backoff doubles from `initial` and is capped at `maximum`; with jitter the wait is
        drawn uniformly from [0, that value] ("full jitter"), which spreads retries of many messages
        that failed together. A server's Retry-After is a floor: it is never waited less than that.
        """
        growth = 1 if self.backoff == "fixed" else 2 ** (attempt - 1)
        base = min(self.maximum, self.initial * growth)
        wait = (rng or random).uniform(0, base) if self.jitter else base
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait


@dataclass
class EndpointPlan:
    """A connector as used by one step: kind, connection, merged options and a readable label."""

    kind: str
    connection: str | None
    options: ResolvedOptions
    span: Span
    label: str


@dataclass
class DeadLetterPlan:
    """Where dead letters go besides the dead-letter store (None: the store only)."""

    endpoint: EndpointPlan | None
    span: Span | None = None


@dataclass
class StepPlan:
    """Base of compiled steps."""

    path: str
    label: str
    span: Span


@dataclass
class ReadPlan(StepPlan):
    """Decode the payload with a format."""

    format: str
    options: dict[str, Any]


@dataclass
class SplitPlan(StepPlan):
    """One message per element of `over`."""

    over: Getter


@dataclass
class FilterPlan(StepPlan):
    """Keep only messages for which `condition` holds."""

    condition: Getter


@dataclass
class DedupePlan(StepPlan):
    """Skip messages whose key was already delivered within `ttl` seconds."""

    key: Getter
    ttl: float


@dataclass
class TrackPlan(StepPlan):
    """Give the message the business keys `keys` evaluate to (lineage finds it by any of them)."""

    keys: list[Getter]


@dataclass
class MapPlan(StepPlan):
    """Run a compiled map; `target_arguments` of a map to a format (`to x12 855`: set 855)."""

    map: CompiledMap
    target_arguments: dict[str, str] = field(default_factory=dict)


@dataclass
class RejectPlan(StepPlan):
    """Dead-letter every message that gets here, with `reason` as the error (R007)."""

    reason: str


@dataclass
class ValidatePlan(StepPlan):
    """Validate the body against a canonical model."""

    model: type[BaseModel]


@dataclass
class SinkPlan(StepPlan):
    """Deliver to a connector; `format` encodes structured bodies."""

    endpoint: EndpointPlan
    format: str
    format_options: dict[str, Any]
    retry: RetryPlan
    dead_letter: DeadLetterPlan


@dataclass
class ReplyPlan(StepPlan):
    """Answer the caller of a request-reply source: status, the body encoded in `format`, headers."""

    status: int
    format: str
    format_options: dict[str, Any]
    headers: list[tuple[str, Any]]


@dataclass
class CallPlan(SinkPlan):
    """Ask another system and continue with its answer; `wait` bounds the call, and when it fails an
    answer to the same request no older than `fallback` seconds is used instead (0: none)."""

    wait: float = 10.0
    fallback: float = 0.0


@dataclass
class AcknowledgePlan(SinkPlan):
    """Send the X12 acknowledgment of the document read; `kind` 997/999, or None for the partner's choice."""

    kind: str | None = None


@dataclass
class FanOutPlan(StepPlan):
    """Run every branch concurrently."""

    branches: list[list[StepPlan]]


@dataclass
class ChoicePlan(StepPlan):
    """The first clause whose condition holds runs; else `otherwise`; else the message is unrouted."""

    clauses: list[tuple[Getter, list[StepPlan]]]
    otherwise: list[StepPlan] | None


@dataclass
class RoutePlan:
    """A route ready to start."""

    name: str
    source: EndpointPlan
    steps: list[StepPlan]
    retry: RetryPlan
    dead_letter: DeadLetterPlan
    concurrency: int
    span: Span
    node: ast.Route

    def locate(self, path: str) -> list[tuple[list[StepPlan], int]] | None:
        """The chain of (step list, index) from the route's top level down to the step at `path`.

        A replay resumes there: it runs the rest of the innermost list, then the rest of each enclosing
        list. None when the route no longer has that step (it was edited since the failure).
        """
        chain: list[tuple[list[StepPlan], int]] = []
        steps = self.steps
        parts = path.split("/")
        while parts:
            head = parts.pop(0)
            if not head.isdigit() or int(head) >= len(steps):
                return None
            index = int(head)
            chain.append((steps, index))
            if not parts:
                return chain
            inner = parts.pop(0)
            steps_inside = _inner_steps(steps[index], inner)
            if steps_inside is None:
                return None
            steps = steps_inside
        return None


def _inner_steps(step: StepPlan, inner: str) -> list[StepPlan] | None:
    if isinstance(step, ChoicePlan):
        if inner == "otherwise":
            return step.otherwise
        if inner.startswith("when") and inner[4:].isdigit() and int(inner[4:]) < len(step.clauses):
            return step.clauses[int(inner[4:])][1]
    if isinstance(step, FanOutPlan) and inner.startswith("branch") and inner[6:].isdigit():
        number = int(inner[6:])
        if number < len(step.branches):
            return step.branches[number]
    return None


def walk_steps(steps: list[StepPlan]) -> list[StepPlan]:
    """Every step of a list, branches included, depth first."""
    found: list[StepPlan] = []
    for step in steps:
        found.append(step)
        if isinstance(step, ChoicePlan):
            for _, branch in step.clauses:
                found.extend(walk_steps(branch))
            if step.otherwise:
                found.extend(walk_steps(step.otherwise))
        if isinstance(step, FanOutPlan):
            for branch in step.branches:
                found.extend(walk_steps(branch))
    return found


@dataclass
class Plan:
    """Every compiled route and map of a project."""

    routes: dict[str, RoutePlan] = field(default_factory=dict)
    maps: dict[str, CompiledMap] = field(default_factory=dict)
    partners: dict[str, PartnerProfile] = field(default_factory=dict)
