"""The conformance suite every two-way connector runs: what a route relies on from any transport.

A connector's test module builds a :class:`Harness` (how to open a source and a sink that read and
write the same place) and calls :func:`conformance_tests`, which returns the test functions for pytest
to collect::

    from conformance import Harness, conformance_tests
    globals().update(conformance_tests("queue", make_harness))

What is checked: a message sent is received with its body and correlation id; an acknowledged
message is not received again; a released one is; a message id sent twice reaches the consumer once
when the connector says it dedupes; `receive(once=True)` ends when nothing is waiting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from crossdock.connectors.base import Sink, Source, connector_spec
from crossdock.engine.message import CORRELATION_HEADER, Inbound, Message, Outcome


@dataclass
class Harness:
    """Opens a source and a sink of one connector over the same queue, folder or topic."""

    open_source: Callable[[], Source]
    open_sink: Callable[[], Sink]


HarnessFactory = Callable[[Any], Awaitable[Harness]]


def message(message_id: str, body: bytes, correlation_id: str = "corr-conformance") -> Message:
    return Message(body=body, route="conformance", message_id=message_id, correlation_id=correlation_id,
                   headers={CORRELATION_HEADER: correlation_id}, meta={"file_name": f"{message_id}.json"})


async def drain(source: Source) -> list[Inbound]:
    return [inbound async for inbound in source.receive(once=True)]


def conformance_tests(kind: str, make: HarnessFactory) -> dict[str, Callable[..., Any]]:
    """The suite for connector `kind`; `make(request)` returns a fresh harness (an empty place)."""

    @pytest.mark.anyio
    async def test_conformance_sent_is_received_with_body_and_correlation(request: pytest.FixtureRequest) -> None:
        harness = await make(request)
        async with harness.open_sink() as sink:
            await sink.send(message("m-1", b'{"po": "PO-1"}', "corr-7"))
        async with harness.open_source() as source:
            received = await drain(source)
            assert [r.body for r in received] == [b'{"po": "PO-1"}']
            headers = {k.lower(): v for k, v in received[0].headers.items()}
            if headers:  # transports without headers (files) carry no correlation id
                assert headers[CORRELATION_HEADER.lower()] == "corr-7"
            await received[0].ack(Outcome.DELIVERED)

    @pytest.mark.anyio
    async def test_conformance_acknowledged_is_not_received_again(request: pytest.FixtureRequest) -> None:
        harness = await make(request)
        async with harness.open_sink() as sink:
            await sink.send(message("m-1", b"one"))
            await sink.send(message("m-2", b"two"))
        async with harness.open_source() as source:
            first = await drain(source)
            assert sorted(r.body for r in first) == [b"one", b"two"]
            for inbound in first:
                await inbound.ack(Outcome.DELIVERED)
        async with harness.open_source() as source:
            assert await drain(source) == []

    @pytest.mark.anyio
    async def test_conformance_released_is_received_again(request: pytest.FixtureRequest) -> None:
        harness = await make(request)
        async with harness.open_sink() as sink:
            await sink.send(message("m-1", b"again"))
        async with harness.open_source() as source:
            [inbound] = await drain(source)
            await inbound.release()
        async with harness.open_source() as source:
            [again] = await drain(source)
            assert again.body == b"again"
            assert again.message_id == inbound.message_id
            await again.ack(Outcome.DELIVERED)

    @pytest.mark.anyio
    async def test_conformance_dedupe_promise_is_kept(request: pytest.FixtureRequest) -> None:
        harness = await make(request)
        dedupes = connector_spec(kind).capabilities.dedupes_by_message_id
        async with harness.open_sink() as sink:
            await sink.send(message("same-id", b"first"))
            await sink.send(message("same-id", b"first"))
        async with harness.open_source() as source:
            received = await drain(source)
            for inbound in received:
                await inbound.ack(Outcome.DELIVERED)
        if dedupes:
            assert [r.body for r in received] == [b"first"]
        else:  # a connector that does not promise it may still collapse them (same file name), never lose both
            assert [r.body for r in received][:1] == [b"first"]

    return {
        f"test_{kind}_conformance_sent_is_received": test_conformance_sent_is_received_with_body_and_correlation,
        f"test_{kind}_conformance_acknowledged_is_gone": test_conformance_acknowledged_is_not_received_again,
        f"test_{kind}_conformance_released_comes_back": test_conformance_released_is_received_again,
        f"test_{kind}_conformance_dedupe_promise": test_conformance_dedupe_promise_is_kept,
    }
