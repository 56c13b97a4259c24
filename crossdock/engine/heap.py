"""How `crossdock run` sets Python's garbage collector before messages flow.

CPython starts a young-generation collection every 700 container objects allocated and not yet
freed. A route with 32 messages in flight holds more than that in decoded bodies, canonical models
and AMQP frames at any moment, so collections ran every few messages; each moved what was in flight
to an older generation, and every tenth of those walked the whole heap, the loaded plan, the parsers
and the pydantic schemas included (about 90,000 objects). Measured on the AMQP route benchmark: 360
young, 33 middle and 3 full collections for 10,000 messages, 20-29 µs a message of a 550-650 µs total.

:func:`settle` freezes what is loaded at start (it is kept for the life of the process anyway, so
no collection needs to walk it) and raises the young threshold, so most of a message's objects are
freed by reference counting before a collection would see them. Cycles are still collected, later.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Container allocations (net of frees) between two young collections, against CPython's 700."""


def settle() -> None:
    """Freeze the objects alive now and raise the young threshold; once, after the plan is loaded."""
    gc.collect()
    gc.freeze()
    young, middle, oldest = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, young), middle, oldest)
