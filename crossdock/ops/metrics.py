"""Metrics: Prometheus counters, histograms and gauges of one engine, in a registry of its own.

Counted as the runtime reports stage transitions (labels `route` and `step`, the step's label:
`to rest "erp-api"` for a sink, `from file "inbox"` for the source):

    crossdock_messages_received_total        messages the source handed over
    crossdock_messages_delivered_total       confirmed deliveries per sink (replies and X12
                                             acknowledgments included)
    crossdock_messages_retried_total         failed attempts that were tried again
    crossdock_messages_dead_lettered_total   messages stored as dead letters, by the step that failed
    crossdock_messages_filtered_total        messages dropped by `keep only when` (or an empty split)
    crossdock_messages_duplicates_total      messages (or X12 interchanges) skipped as duplicates

Timed (seconds, wall clock):

    crossdock_stage_duration_seconds{route, kind}   one step on one message; kind is read, map,
                                                    validate, filter, dedupe, deliver, call, reply...
    crossdock_message_duration_seconds{route}       receiving to acknowledging a source message

Read when scraped (:meth:`EngineMetrics.refresh` first reads what lives in stores):

    crossdock_route_up{route}                          1 while the route runs
    crossdock_messages_in_flight{route}                received and not yet acknowledged
    crossdock_oldest_unacknowledged_age_seconds{route} age of the oldest of those (0: none)
    crossdock_queue_depth{database, queue}             messages in the embedded queues the routes use
    crossdock_http_inbox_depth{route, endpoint}        accepted HTTP requests not yet acknowledged
                                                       (route "": an endpoint no running route serves)
    crossdock_circuit_breaker_state{route, step, endpoint}   0 closed, 1 half-open, 2 open
    crossdock_dead_letters                             entries in the dead-letter store
    crossdock_oldest_dead_letter_age_seconds           age of the oldest entry (0: none)
    crossdock_x12_acknowledgments_overdue{partner}     sets sent whose 997/999 is past due
    crossdock_reloads_total, crossdock_reload_failures_total, crossdock_last_reload_success
                                                       `crossdock run --watch` reloads (engine.reload_status)

Ages come from the engine's clock, so tests on a ManualClock read exact values.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from crossdock.connectors.base import ConnectorContext
from crossdock.connectors.queue import DEFAULT_DATABASE_NAME, QueueDatabase
from crossdock.engine.plan import EndpointPlan, RoutePlan, SinkPlan, walk_steps
from crossdock.engine.services import materialize
from crossdock.ops.families import CounterFamily, HistogramFamily

if TYPE_CHECKING:
    from crossdock.engine.engine import Engine

log = logging.getLogger("crossdock.metrics")

STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                 60.0, 300.0)
BREAKER_VALUES = {"closed": 0.0, "half-open": 1.0, "open": 2.0}
HTTP_HUB_KEY = "crossdock.connectors.http"
"""Where the http connector keeps its servers and inboxes in the engine's shared dict."""

# Journal events counted, and the counter each goes to.
COUNTED = {
    "received": "received",
    "delivered": "delivered",
    "replied": "delivered",
    "retried": "retried",
    "dead-lettered": "dead_lettered",
    "filtered": "filtered",
    "duplicate": "duplicates",
    "duplicate-interchange": "duplicates",
}
_HELP = {
    "received": "Messages received from the route's source.",
    "delivered": "Confirmed deliveries to a sink (replies and X12 acknowledgments included).",
    "retried": "Failed attempts at a sink that were tried again.",
    "dead_lettered": "Messages stored in the dead-letter store, by the step that failed.",
    "filtered": "Messages dropped by `keep only when` (or a split with nothing in it).",
    "duplicates": "Messages (or X12 interchanges) skipped as duplicates.",
}
# Step kinds whose counters exist from the start (at 0), so that rate() and alerts see them at once.
_FROM_START = {"delivered": ("SinkPlan", "ReplyPlan", "AcknowledgePlan"),
               "retried": ("SinkPlan", "AcknowledgePlan"),
               "filtered": ("FilterPlan",),
               "duplicates": ("DedupePlan",)}


@dataclass
class StoreReadings:
    """What the last :meth:`EngineMetrics.refresh` read from stores and connectors."""

    dead_letters: int = 0
    oldest_dead_letter: float | None = None
    overdue: dict[str, int] = field(default_factory=dict)
    queues: dict[tuple[str, str], int] = field(default_factory=dict)
    inboxes: dict[tuple[str, str], int] = field(default_factory=dict)
    now: float = 0.0


class EngineMetrics:
    """The engine's registry: counters and histograms fed by the runtime, gauges read when scraped."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.registry = CollectorRegistry()
        self.counters = {
            name: CounterFamily(f"crossdock_messages_{name}", text, ["route", "step"], registry=self.registry)
            for name, text in _HELP.items()
        }
        self.stage_seconds = HistogramFamily(
            "crossdock_stage_duration_seconds", "Time one step took on one message.", ["route", "kind"],
            buckets=STAGE_BUCKETS, registry=self.registry)
        self.message_seconds = HistogramFamily(
            "crossdock_message_duration_seconds", "Time from receiving a source message to acknowledging it.",
            ["route"], buckets=STAGE_BUCKETS, registry=self.registry)
        self.readings = StoreReadings()
        self.running: set[str] = set()
        # route -> {scope: monotonic time received}, in arrival order: the first is the oldest
        self.in_flight: dict[str, dict[object, float]] = {}
        self._children: dict[tuple[str, str, str | None], Any] = {}
        self._queues_of: tuple[object, dict[Path, set[str]]] | None = None
        self.registry.register(_ScrapeTime(self))

    # ---- fed by the runtime ---------------------------------------------------------------------

    def count(self, event: str, route: str, step: str | None) -> None:
        """Count a journal event, if it is one of :data:`COUNTED`."""
        key = (event, route, step)
        child = self._children.get(key)
        if child is None:
            name = COUNTED.get(event)
            if name is None:
                return
            child = self._children[key] = self.counters[name].labels(route, step or "")
        child.inc()

    def route_started(self, route: RoutePlan) -> None:
        """The route runs: its known counters appear at 0."""
        self.running.add(route.name)
        self.in_flight.setdefault(route.name, {})
        self.counters["received"].labels(route.name, f"from {route.source.label}")
        for step in walk_steps(route.steps):
            for name, kinds in _FROM_START.items():
                if type(step).__name__ in kinds:
                    self.counters[name].labels(route.name, step.label)

    def route_stopped(self, route: str) -> None:
        self.running.discard(route)

    # ---- read when scraped ----------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read what the gauges show from the stores and connectors (an error keeps the last reading)."""
        services = self.engine.services
        readings = StoreReadings(now=services.clock.now())
        try:
            readings.dead_letters = await services.stores.dead_letters.count()
            readings.oldest_dead_letter = await services.stores.dead_letters.oldest_created_at()
            readings.overdue = dict.fromkeys(self.engine.plan.partners, 0)
            if services.stores.edi is not None:
                readings.overdue.update(Tally(s.partner for s in await services.stores.edi.sent.overdue(readings.now)))
            readings.queues = await self._queue_depths()
            readings.inboxes = await self._inbox_depths()
        except Exception as error:  # a scrape must answer; the store's own error says what went wrong
            log.warning("metrics: could not read the stores: %s", error)
            return
        self.readings = readings

    async def _queue_depths(self) -> dict[tuple[str, str], int]:
        depths: dict[tuple[str, str], int] = {}
        data_dir = self.engine.services.data_dir
        for path, names in self._queue_files().items():
            if not path.exists():
                continue
            label = str(path.relative_to(data_dir)) if path.is_relative_to(data_dir) else str(path)
            async with QueueDatabase(path) as database:
                found = await database.queues()
            for queue in names | set(found):
                depths[(label, queue)] = found.get(queue, 0)
        return depths

    def _queue_files(self) -> dict[Path, set[str]]:
        """The embedded queue files the plan's routes name, with their queues (worked out once per plan)."""
        plan = self.engine.plan
        if self._queues_of is not None and self._queues_of[0] is plan:
            return self._queues_of[1]
        services = self.engine.services
        context = ConnectorContext(owner="metrics", data_dir=services.data_dir)
        files: dict[Path, set[str]] = {}
        for route in plan.routes.values():
            for endpoint in _endpoints(route):
                if endpoint.kind != "queue":
                    continue
                try:
                    options = materialize(endpoint.options, services.env)
                except Exception:  # unset env: the route itself reports it when it starts
                    continue
                database = options.get("database")
                path = context.resolve_path(str(database)) if database else services.data_dir / DEFAULT_DATABASE_NAME
                files.setdefault(path, set()).add(str(options.get("queue", "")))
        self._queues_of = (plan, files)
        return files

    async def _inbox_depths(self) -> dict[tuple[str, str], int]:
        hub = self.engine.services.shared.get(HTTP_HUB_KEY)
        depths: dict[tuple[str, str], int] = {}
        if hub is None:
            return depths
        served = {(s.settings.inbox, s.settings.endpoint): s.settings.route
                  for s in list(hub.sources()) if s.settings.intake}
        for path, inbox in list(hub.inboxes.items()):
            waiting = await inbox.depths()
            for (inbox_path, endpoint), route in served.items():
                if inbox_path == path:
                    depths[(route, endpoint)] = waiting.pop(endpoint, 0)
            for endpoint, count in waiting.items():  # no route serves it: kept, and shown with route ""
                depths[("", endpoint)] = count
        return depths

    def collect_now(self) -> Iterator[Metric]:
        """The scrape-time gauges: live state, and the last store readings."""
        gauges = {name: _gauge(name) for name in GAUGES}
        mono = self.engine.services.clock.monotonic()
        for route in list(self.engine.runners):
            held = self.in_flight.get(route, {})
            first = next(iter(held.values()), None)
            gauges["crossdock_route_up"].add_metric([route], 1.0 if route in self.running else 0.0)
            gauges["crossdock_messages_in_flight"].add_metric([route], float(len(held)))
            gauges["crossdock_oldest_unacknowledged_age_seconds"].add_metric(
                [route], 0.0 if first is None else max(0.0, mono - first))
        for route, step, endpoint, state in self._breakers():
            gauges["crossdock_circuit_breaker_state"].add_metric([route, step, endpoint], BREAKER_VALUES[state])
        readings = self.readings
        for (database, queue), depth in sorted(readings.queues.items()):
            gauges["crossdock_queue_depth"].add_metric([database, queue], float(depth))
        for (route, endpoint), depth in sorted(readings.inboxes.items()):
            gauges["crossdock_http_inbox_depth"].add_metric([route, endpoint], float(depth))
        gauges["crossdock_dead_letters"].add_metric([], float(readings.dead_letters))
        oldest = readings.oldest_dead_letter
        gauges["crossdock_oldest_dead_letter_age_seconds"].add_metric(
            [], 0.0 if oldest is None else max(0.0, readings.now - oldest))
        for partner, count in sorted(readings.overdue.items()):
            gauges["crossdock_x12_acknowledgments_overdue"].add_metric([partner], float(count))
        return iter([*gauges.values(), *self._reloads()])

    def _reloads(self) -> Iterator[Metric]:
        """What `crossdock run --watch` reloads did (engine.reload_status; nothing reloaded yet: 0)."""
        status = getattr(self.engine, "reload_status", None)
        families = _reload_families()
        families[0].add_metric([], float(status.reloads if status else 0))
        families[1].add_metric([], float(status.failures if status else 0))
        if status is not None:
            families[2].add_metric([], 1.0 if status.ok else 0.0)
        return iter(families)

    def _breakers(self) -> Iterator[tuple[str, str, str, str]]:
        """(route, step label, endpoint, state) of every circuit breaker of the running sinks."""
        for route, runner in list(self.engine.runners.items()):
            labels = {step.path: step.label for step in walk_steps(runner.plan.steps)}
            for path, sink in list(runner.sinks.items()):
                states = getattr(getattr(sink, "client", None), "breakers", None)
                if states is None:  # only REST clients have breakers
                    continue
                for endpoint, state in sorted(states().items()):
                    yield route, labels.get(path, path), endpoint, str(state.state)


# The gauges read when scraped: name -> (help, labels).
GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "crossdock_route_up": ("1 while the route runs, else 0.", ("route",)),
    "crossdock_messages_in_flight": ("Messages received and not yet acknowledged.", ("route",)),
    "crossdock_oldest_unacknowledged_age_seconds": (
        "Age of the oldest message received and not yet acknowledged (0: none).", ("route",)),
    "crossdock_circuit_breaker_state": ("Circuit breaker of a REST endpoint: 0 closed, 1 half-open, 2 open.",
                                        ("route", "step", "endpoint")),
    "crossdock_queue_depth": ("Messages in an embedded queue.", ("database", "queue")),
    "crossdock_http_inbox_depth": ("Accepted HTTP intake requests not yet acknowledged by their route "
                                   "(route \"\": an endpoint no running route serves).",
                                   ("route", "endpoint")),
    "crossdock_dead_letters": ("Entries in the dead-letter store.", ()),
    "crossdock_oldest_dead_letter_age_seconds": ("Age of the oldest entry in the dead-letter store (0: none).", ()),
    "crossdock_x12_acknowledgments_overdue": ("X12 transaction sets sent whose acknowledgment is past due.",
                                              ("partner",)),
}


def _reload_families() -> list[Metric]:
    return [CounterMetricFamily("crossdock_reloads", "Route reloads tried (crossdock run --watch).", labels=[]),
            CounterMetricFamily("crossdock_reload_failures",
                                "Route reloads refused: the edited routes did not lint or lacked settings.",
                                labels=[]),
            GaugeMetricFamily("crossdock_last_reload_success",
                              "1 when the last reload was swapped in, 0 when it was refused (absent before one).",
                              labels=[])]


def _gauge(name: str) -> GaugeMetricFamily:
    text, labels = GAUGES[name]
    return GaugeMetricFamily(name, text, labels=list(labels))


def _endpoints(route: RoutePlan) -> Iterator[EndpointPlan]:
    """The source, every sink and every dead-letter target of a route."""
    yield route.source
    if route.dead_letter.endpoint is not None:
        yield route.dead_letter.endpoint
    for step in walk_steps(route.steps):
        if isinstance(step, SinkPlan):
            yield step.endpoint
            if step.dead_letter.endpoint is not None:
                yield step.dead_letter.endpoint


class _ScrapeTime:
    """Hands the registry the gauges computed when scraped."""

    def __init__(self, metrics: EngineMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        """The gauges' names, without reading anything (the registry checks them for clashes)."""
        return iter([*(_gauge(name) for name in GAUGES), *_reload_families()])

    def collect(self) -> Iterator[Metric]:
        return self._metrics.collect_now()
