"""Waiting in tests for something that happens in the background: a guard against hanging, not a timing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio


async def eventually(check: Callable[[], Any], what: str, within: float = 20.0) -> None:
    """Wait until `check()` holds (its result awaited when it is awaitable); fail after `within`
    seconds, naming `what` was awaited. The tests never depend on how fast anything is."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if hasattr(result, "__await__"):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {within}s: {what}")
        await anyio.sleep(0.02)
