"""`heap.settle`: what `crossdock run` does to the garbage collector before messages flow."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from crossdock.engine import heap


@pytest.fixture
def collector() -> Iterator[None]:
    """Put the collector back as it was, so the rest of the suite runs with CPython's settings."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector")
def test_settle_freezes_what_is_loaded_and_raises_only_the_young_threshold() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    assert gc.get_freeze_count() == 0
    heap.settle()
    assert gc.get_freeze_count() > 0  # the test session's modules, fixtures and this test's frame
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, 10, 10)


@pytest.mark.usefixtures("collector")
def test_settle_keeps_a_higher_young_threshold_set_before() -> None:
    gc.set_threshold(heap.YOUNG_THRESHOLD * 2, 5, 5)
    heap.settle()
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD * 2, 5, 5)
