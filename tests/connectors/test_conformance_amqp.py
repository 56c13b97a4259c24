"""The amqp connector passes the shared conformance suite, on a fresh queue of a real RabbitMQ per test."""

from __future__ import annotations

import uuid

import pytest
from conformance import Harness, conformance_tests

from crossdock.connectors import amqp
from crossdock.connectors.base import ConnectorContext


async def amqp_harness(request: pytest.FixtureRequest) -> Harness:
    url = request.getfixturevalue("rabbitmq")
    context = ConnectorContext(owner="conformance")
    defaults = {spec.key: spec.default for spec in amqp.SPEC.options if spec.default is not None}
    options = {**defaults, "url": url, "queue": f"conformance.{uuid.uuid4().hex[:10]}"}
    return Harness(lambda: amqp.open_source(options, context), lambda: amqp.open_sink(options, context))


globals().update(conformance_tests("amqp", amqp_harness))
