"""The lock-free counter and histogram families, read back through prometheus_client's exposition."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from crossdock.ops.families import CounterFamily, HistogramFamily


def exposed(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_counter_children_count_per_label_set_and_appear_at_zero_once_asked_for() -> None:
    registry = CollectorRegistry()
    counter = CounterFamily("crossdock_messages_received", "Received.", ["route", "step"], registry=registry)
    orders = counter.labels("orders", "from file")
    orders.inc()
    counter.labels("orders", "from file").inc(2)  # the same cell, whichever child object increments it
    counter.labels("stock", "from queue")
    samples = exposed(registry)
    assert samples[("crossdock_messages_received_total", (("route", "orders"), ("step", "from file")))] == 3
    assert samples[("crossdock_messages_received_total", (("route", "stock"), ("step", "from queue")))] == 0
    assert orders.value == 3


def test_histogram_buckets_are_cumulative_with_le_labels_sum_and_count() -> None:
    registry = CollectorRegistry()
    histogram = HistogramFamily("crossdock_stage_duration_seconds", "Step time.", ["route", "kind"],
                                buckets=(0.001, 0.01, 1), registry=registry)
    child = histogram.labels("orders", "map")
    for seconds in (0.0005, 0.001, 0.002, 0.5, 7.0):  # 0.001 is in its own bucket: le means <=
        child.observe(seconds)
    samples = exposed(registry)
    labels = (("kind", "map"), ("route", "orders"))

    def bucket(le: str) -> float:
        return samples[("crossdock_stage_duration_seconds_bucket", tuple(sorted((*labels, ("le", le)))))]

    assert [bucket(le) for le in ("0.001", "0.01", "1.0", "+Inf")] == [2, 3, 4, 5]
    assert samples[("crossdock_stage_duration_seconds_count", labels)] == 5
    assert samples[("crossdock_stage_duration_seconds_sum", labels)] == 0.0005 + 0.001 + 0.002 + 0.5 + 7.0
