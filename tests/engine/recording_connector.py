"""A sink for runtime tests: records what it receives and fails on cue.

It stands in for a remote system in tests of the runtime's own behaviour (retry schedule, dead
letters, fan-out); the real connectors are tested against real servers in tests/connectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import anyio

from crossdock.connectors.base import ConnectorContext, ConnectorSpec
from crossdock.dsl.options import OptionSpec, OptionType, Role
from crossdock.engine.message import Message

SPEC = ConnectorSpec(
    kind="recording",
    description="Test sink: records messages per channel, raises the errors queued in FAILURES first.",
    roles=frozenset({Role.SINK}),
    options=(OptionSpec("channel", OptionType.STRING, "Which list records the messages.", required=True),),
    connection="none",
)

RECEIVED: dict[str, list[Message]] = {}
FAILURES: dict[str, list[Exception]] = {}
DELAY: dict[str, float] = {}
CONCURRENCY = {"now": 0, "max": 0}


def reset() -> None:
    RECEIVED.clear()
    FAILURES.clear()
    DELAY.clear()
    CONCURRENCY.update(now=0, max=0)


class RecordingSink:
    def __init__(self, channel: str, context: ConnectorContext) -> None:
        self.channel = channel
        self.context = context

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, message: Message) -> None:
        CONCURRENCY["now"] += 1
        CONCURRENCY["max"] = max(CONCURRENCY["max"], CONCURRENCY["now"])
        try:
            await anyio.sleep(DELAY.get(self.channel, 0))
            queued = FAILURES.get(self.channel)
            if queued:
                raise queued.pop(0)
            RECEIVED.setdefault(self.channel, []).append(message)
        finally:
            CONCURRENCY["now"] -= 1


def open_sink(options: Mapping[str, Any], context: ConnectorContext) -> RecordingSink:
    return RecordingSink(options["channel"], context)
