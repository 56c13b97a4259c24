"""Labelled counters and histograms fed from the event loop, exposed through a prometheus registry.

prometheus_client's own Counter and Histogram take a lock per increment and walk the buckets in
Python; the runtime feeds nine of them a message, which measured about 24 µs a message of a 117 µs
engine path (`bench/route_path.py`). Here a child is a small list bumped in place: every writer runs
on the engine's event loop, so there is nothing to lock, and a scrape (served on that loop too)
reads the lists whole. The exposition is what prometheus_client writes for its own (`_total`,
`_bucket` with `le`, `_sum`, `_count`), without the optional `_created` samples.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString


class CounterChild:
    """One label set of a :class:`CounterFamily`."""

    __slots__ = ("_cell",)

    def __init__(self, cell: list[float]) -> None:
        self._cell = cell

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount` (never negative: a counter only goes up)."""
        self._cell[0] += amount

    @property
    def value(self) -> float:
        return self._cell[0]


class CounterFamily:
    """A counter with labels, registered in `registry` (exposed as `<name>_total`)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry) -> None:
        self.name = name.removesuffix("_total")
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._cells: dict[tuple[str, ...], list[float]] = {}
        registry.register(self)

    def labels(self, *values: str) -> CounterChild:
        """The child for these label values (created at 0 the first time)."""
        cell = self._cells.get(values)
        if cell is None:
            cell = self._cells[values] = [0.0]
        return CounterChild(cell)

    def describe(self) -> Iterator[Metric]:
        return iter([CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)])

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, cell in self._cells.items():
            family.add_metric(list(values), cell[0])
        yield family


class HistogramChild:
    """One label set of a :class:`HistogramFamily`: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("_bounds", "_counts", "_sum")

    def __init__(self, bounds: Sequence[float], counts: list[int], total: list[float]) -> None:
        self._bounds = bounds
        self._counts = counts
        self._sum = total

    def observe(self, amount: float) -> None:
        """Count `amount` in the first bucket whose upper bound is at least it."""
        self._counts[bisect_left(self._bounds, amount)] += 1
        self._sum[0] += amount


class HistogramFamily:
    """A histogram with labels and fixed bucket bounds (`+Inf` is added), registered in `registry`."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], *,
                 buckets: Sequence[float], registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = tuple(float(bound) for bound in buckets)
        self._children: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}
        registry.register(self)

    def labels(self, *values: str) -> HistogramChild:
        """The child for these label values (empty the first time)."""
        found = self._children.get(values)
        if found is None:
            found = self._children[values] = ([0] * (len(self.bounds) + 1), [0.0])
        return HistogramChild(self.bounds, *found)

    def describe(self) -> Iterator[Metric]:
        return iter([HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)])

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        edges = [*(floatToGoString(bound) for bound in self.bounds), "+Inf"]
        for values, (counts, total) in self._children.items():
            cumulative, buckets = 0, []
            for edge, count in zip(edges, counts, strict=True):
                cumulative += count
                buckets.append((edge, cumulative))
            family.add_metric(list(values), buckets, total[0])
        yield family
