"""The message envelope that travels through a route, and what a source hands to the runtime.

A source yields :class:`Inbound` items: raw bytes, headers, a stable id and an acknowledgment handle.
The runtime wraps each in a :class:`Message` that carries the correlation id from stage to stage.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

CORRELATION_HEADER = "X-Correlation-ID"


class Outcome(StrEnum):
    """How a source message ended; sources act on it when acknowledged (move to done or failed...)."""

    DELIVERED = "delivered"
    FILTERED = "filtered"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead-lettered"

    @property
    def succeeded(self) -> bool:
        return self is not Outcome.DEAD_LETTERED


AckFn = Callable[[Outcome], Awaitable[None]]
ReleaseFn = Callable[[], Awaitable[None]]
ReplyFn = Callable[[int, dict[str, str], bytes], Awaitable[None]]
"""Answers the caller of a request-reply source (HTTP): status, headers, body."""


async def _nothing(*_: Any) -> None:
    return None


@dataclass
class Inbound:
    """One item received by a source, not yet acknowledged.

    `ack(outcome)` is called exactly once, after every sink confirmed or the message was durably
    dead-lettered; `release()` instead when the runtime stops before finishing it, so the source can
    offer it again (a file stays in place, an AMQP delivery is rejected with requeue).
    """

    body: bytes
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    ack: AckFn = _nothing
    release: ReleaseFn = _nothing
    reply: ReplyFn | None = None
    """Set by request-reply sources: the route's `reply` step answers the waiting caller with it."""


def new_correlation_id() -> str:
    """A fresh correlation id: 128 random bits in hex, like a UUID4's.

    From the random module (seeded from the OS at start) rather than os.urandom per message, which
    costs a system call: an id must be unique, not unguessable.
    """
    return f"{random.getrandbits(128):032x}"


def derived_id(*parts: str) -> str:
    """A stable id built from parts, so that a redelivered message gets the same id again."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass
class Message:
    """A message in flight: its body (raw or decoded), headers and identity.

    `message_id` is stable across redeliveries (derived from the source's id, the split index and the
    sink), so sinks that support it drop a copy they already hold. `original` keeps the bytes that
    came from the source for the dead-letter store.
    """

    body: Any
    route: str
    message_id: str
    correlation_id: str
    original: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    business_key: str | None = None
    attempt: int = 1
    reply: ReplyFn | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_inbound(cls, inbound: Inbound, route: str) -> Message:
        """Wrap what a source received; the correlation id comes from the headers when present."""
        correlation = _header(inbound.headers, CORRELATION_HEADER) or new_correlation_id()
        return cls(
            body=inbound.body,
            route=route,
            message_id=inbound.message_id,
            correlation_id=correlation,
            original=inbound.body,
            headers=dict(inbound.headers),
            meta=dict(inbound.meta),
            reply=inbound.reply,
        )

    def child(self, body: Any, index: int) -> Message:
        """A message produced by a split: same correlation id, its own stable id."""
        return replace(
            self,
            body=body,
            message_id=derived_id(self.message_id, str(index)),
            headers=dict(self.headers),
            meta={**self.meta, "split_index": index},
        )

    def with_body(self, body: Any) -> Message:
        """The same message carrying a new body (after decode, map...)."""
        # spelled out: several times cheaper than copy.copy or dataclasses.replace, once per step
        return Message(body, self.route, self.message_id, self.correlation_id, self.original, self.headers,
                       self.meta, self.idempotency_key, self.business_key, self.attempt, self.reply)


def _header(headers: dict[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None
