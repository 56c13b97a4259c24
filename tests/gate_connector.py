"""A sink for tests of sources: it holds every message until the test opens its gate, then records it.

It lets a test look at a source's state while a message is in flight (the http inbox holds the row
between the 202 and the acknowledgment) and stop an engine with work unfinished. Gates are anyio
events, so each test calls :func:`reset` (the fixtures do) before its engine starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import anyio

from crossdock.connectors.base import ConnectorContext, ConnectorSpec
from crossdock.dsl.options import OptionSpec, OptionType, Role
from crossdock.engine.message import Message

SPEC = ConnectorSpec(
    kind="gate",
    description="Test sink: waits until its gate is open, then records the message.",
    roles=frozenset({Role.SINK}),
    options=(OptionSpec("name", OptionType.STRING, "Which gate the sink waits on.", required=True),),
    connection="none",
)

GATES: dict[str, anyio.Event] = {}
WAITING: dict[str, int] = {}
RECEIVED: dict[str, list[Message]] = {}


def reset() -> None:
    GATES.clear()
    WAITING.clear()
    RECEIVED.clear()


def gate(name: str) -> anyio.Event:
    """The gate `name` (closed until `.set()`)."""
    return GATES.setdefault(name, anyio.Event())


class GateSink:
    def __init__(self, name: str) -> None:
        self.name = name

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, message: Message) -> None:
        WAITING[self.name] = WAITING.get(self.name, 0) + 1
        try:
            await gate(self.name).wait()
        finally:
            WAITING[self.name] -= 1
        RECEIVED.setdefault(self.name, []).append(message)


def open_sink(options: Mapping[str, Any], context: ConnectorContext) -> GateSink:
    return GateSink(options["name"])
