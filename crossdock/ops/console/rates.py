"""Live rates for the Routes page: a small ring buffer of counter samples per route, and its chart.

The engine keeps cumulative counters (:class:`~crossdock.engine.stats.RouteStats`); a rate needs two
readings apart in time. :class:`RateSampler` reads the counters every `interval` seconds into a
bounded deque per route, so memory stays flat however long the daemon runs, and derives from it the
rate over the last minute and the points of a small chart. Samples take the counters only (no store
query), so sampling costs microseconds and never waits on the disk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise

import anyio

from crossdock.engine.clock import Clock
from crossdock.engine.stats import RouteStats

SAMPLE_INTERVAL_SECONDS = 5.0
SAMPLES_KEPT = 120  # ten minutes at the default interval
RATE_WINDOW_SECONDS = 60.0
SERIES = ("received", "delivered", "dead_lettered")


@dataclass(frozen=True, slots=True)
class Sample:
    """The counters of one route at one moment (`mono` orders samples; `at` is for people)."""

    at: float
    mono: float
    received: int
    delivered: int
    dead_lettered: int

    def count(self, series: str) -> int:
        """The counter named `series` (one of :data:`SERIES`)."""
        value: int = getattr(self, series)
        return value


@dataclass(frozen=True, slots=True)
class Chart:
    """An inline SVG chart: one polyline per series, in a `width` x `height` box (y grows downwards)."""

    width: int
    height: int
    lines: dict[str, str]
    peak: float
    span_seconds: float

    @property
    def empty(self) -> bool:
        """True until two samples exist (a rate needs two readings)."""
        return not self.lines


class RateSampler:
    """Samples every route's counters into a ring buffer and derives rates and charts from it."""

    def __init__(
        self,
        stats: Callable[[], Mapping[str, RouteStats]],
        clock: Clock,
        *,
        interval: float = SAMPLE_INTERVAL_SECONDS,
        keep: int = SAMPLES_KEPT,
    ) -> None:
        # A callable, not the mapping itself: a reload may give the engine new RouteStats objects.
        self._stats = stats
        self._clock = clock
        self.interval = interval
        self.keep = keep
        self.samples: dict[str, deque[Sample]] = {}

    def sample(self) -> None:
        """Read every route's counters now; routes that disappeared lose their buffer."""
        now, mono = self._clock.now(), self._clock.monotonic()
        routes = dict(self._stats())
        for name in list(self.samples):
            if name not in routes:
                del self.samples[name]
        for name, stats in routes.items():
            buffer = self.samples.setdefault(name, deque(maxlen=self.keep))
            buffer.append(Sample(now, mono, stats.received, stats.delivered, stats.dead_lettered))

    async def run(self) -> None:
        """Sample every `interval` seconds until cancelled (real time: a test clock never drives it)."""
        while True:
            self.sample()
            await anyio.sleep(self.interval)

    def rates(self, route: str, window: float = RATE_WINDOW_SECONDS) -> dict[str, float] | None:
        """Messages per second of each series over the last `window` seconds, or None before two samples."""
        buffer = self.samples.get(route)
        if not buffer or len(buffer) < 2:
            return None
        last = buffer[-1]
        first = next((s for s in buffer if last.mono - s.mono <= window), buffer[-2])
        if first is last:
            first = buffer[-2]
        elapsed = last.mono - first.mono
        if elapsed <= 0:
            return None
        return {series: _increase(first.count(series), last.count(series)) / elapsed for series in SERIES}

    def chart(self, route: str, *, width: int = 300, height: int = 60) -> Chart:
        """The per-interval rates of the kept samples as polylines, the newest at the right edge."""
        buffer = list(self.samples.get(route, ()))
        span = self.interval * (self.keep - 1)
        if len(buffer) < 2:
            return Chart(width, height, {}, 0.0, span)
        end = buffer[-1].mono
        points: dict[str, list[tuple[float, float]]] = {series: [] for series in SERIES}
        for before, after in pairwise(buffer):
            elapsed = after.mono - before.mono
            if elapsed <= 0:
                continue
            for series in SERIES:
                points[series].append((after.mono, _increase(before.count(series), after.count(series)) / elapsed))
        peak = max((rate for series in points.values() for _, rate in series), default=0.0)
        scale = peak if peak > 0 else 1.0
        lines = {}
        for series, values in points.items():
            if not values:
                continue
            lines[series] = " ".join(
                f"{max(0.0, width * (1 - (end - at) / span)):.1f},{height - (height - 2) * rate / scale - 1:.1f}"
                for at, rate in values
            )
        return Chart(width, height, lines, peak, span)


def _increase(before: int, after: int) -> int:
    """How much a counter grew; a counter that went down was reset (new stats after a reload)."""
    return after - before if after >= before else after
