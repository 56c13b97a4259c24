"""The embedded connectors (file, queue) pass the shared conformance suite."""

from __future__ import annotations

from typing import Any

import pytest
from conformance import Harness, conformance_tests

from crossdock.connectors import file as file_connector
from crossdock.connectors import queue as queue_connector
from crossdock.connectors.base import ConnectorContext
from crossdock.engine.clock import ManualClock


def _options(spec: Any, **values: Any) -> dict[str, Any]:
    return {**{option.key: option.default for option in spec.options}, **values}


async def file_harness(request: pytest.FixtureRequest) -> Harness:
    tmp_path = request.getfixturevalue("tmp_path")
    context = ConnectorContext(owner="conformance", data_dir=tmp_path, clock=ManualClock())
    options = _options(file_connector.SPEC, folder="box", files="*.json", settle=0.0, file_name=None)
    return Harness(lambda: file_connector.open_source(options, context),
                   lambda: file_connector.open_sink(options, context))


async def queue_harness(request: pytest.FixtureRequest) -> Harness:
    tmp_path = request.getfixturevalue("tmp_path")
    context = ConnectorContext(owner="conformance", data_dir=tmp_path, clock=ManualClock())
    options = _options(queue_connector.SPEC, queue="conformance")
    return Harness(lambda: queue_connector.open_source(options, context),
                   lambda: queue_connector.open_sink(options, context))


globals().update(conformance_tests("file", file_harness))
globals().update(conformance_tests("queue", queue_harness))
