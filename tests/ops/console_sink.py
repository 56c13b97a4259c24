"""A sink for the console tests: an ERP stand-in that refuses chosen orders and a partner that is down.

`REFUSED` holds the PO numbers the "ERP" refuses permanently (code ERP422) until a test clears it,
which is how a test fixes the cause before replaying from the console. A channel in `OFFLINE` cannot
open, so its route fails at start (code MKT503).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Self

from crossdock.connectors.base import ConnectorContext, ConnectorSpec
from crossdock.dsl.options import OptionSpec, OptionType, Role
from crossdock.engine.errors import PermanentError
from crossdock.engine.message import Message

SPEC = ConnectorSpec(
    kind="console",
    description="Test sink: records messages per channel, refuses the PO numbers in REFUSED.",
    roles=frozenset({Role.SINK}),
    options=(OptionSpec("channel", OptionType.STRING, "Which list records the messages.", required=True),),
    connection="none",
)

RECEIVED: dict[str, list[Message]] = {}
REFUSED: set[str] = set()
OFFLINE: set[str] = set()


def reset() -> None:
    RECEIVED.clear()
    REFUSED.clear()
    OFFLINE.clear()


class ConsoleSink:
    def __init__(self, channel: str) -> None:
        self.channel = channel

    async def __aenter__(self) -> Self:
        if self.channel in OFFLINE:
            raise PermanentError(f"{self.channel}: the partner API is unreachable", code="MKT503")
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, message: Message) -> None:
        po_number = json.loads(message.body).get("po_number")
        if po_number in REFUSED:
            raise PermanentError(f"ERP refused order {po_number}: unknown customer", code="ERP422")
        RECEIVED.setdefault(self.channel, []).append(message)


def open_sink(options: Mapping[str, Any], context: ConnectorContext) -> ConsoleSink:
    return ConsoleSink(options["channel"])
