"""Traces: off by default, on from OTEL_ variables; a message's span tree across steps and attempts, with
its context carried in from HTTP requests and AMQP headers and out on REST calls and AMQP publishes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import aio_pika
import aiohttp
import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from ops_world import engine_for, run_once, write_project
from servers.erp_standin import Answer, ErpStandIn
from servers.ports import free_port

from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import embedded_stores
from crossdock.ops.tracing import Tracing, tracing_from_env

pytestmark = pytest.mark.anyio

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture
def spans() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Tracing(provider), exporter
    provider.shutdown()


def hexes(span: ReadableSpan) -> tuple[str, str, str | None]:
    """(trace id, span id, parent span id) of a finished span, as in traceparent."""
    context = span.get_span_context()
    parent = span.parent.span_id if span.parent is not None else None
    return (f"{context.trace_id:032x}", f"{context.span_id:016x}", None if parent is None else f"{parent:016x}")


def traceparent_parts(value: str) -> tuple[str, str]:
    version, trace_id, span_id, flags = value.split("-")
    assert (version, flags) == ("00", "01")
    return trace_id, span_id


# ---- on and off ---------------------------------------------------------------------------------


def test_tracing_is_off_unless_an_otel_variable_asks_for_an_exporter() -> None:
    assert tracing_from_env({}) is None
    assert tracing_from_env({"OTEL_TRACES_EXPORTER": "none"}) is None
    assert tracing_from_env({"OTEL_TRACES_EXPORTER": "zipkin"}) is None  # not available: left out, said so
    assert tracing_from_env({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}) is None
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)  # nothing installed globally


def test_the_console_exporter_writes_spans_to_stderr_under_the_service_name(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "crossdock-edge-1")
    tracing = tracing_from_env({"OTEL_TRACES_EXPORTER": "console"})
    assert tracing is not None
    tracing.tracer.start_span("hello").end()
    tracing.shutdown()
    written = json.loads(capsys.readouterr().err)
    assert (written["name"], written["resource"]["attributes"]["service.name"]) == ("hello", "crossdock-edge-1")


def test_an_otlp_endpoint_alone_turns_otlp_export_on(erp: ErpStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", erp.base_url)  # the stand-in records what it gets
    tracing = tracing_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": erp.base_url})
    assert tracing is not None
    tracing.tracer.start_span("exported").end()
    tracing.shutdown()
    [request] = erp.requests
    assert (request.method, request.path, request.headers["Content-Type"]) == (
        "POST", "/v1/traces", "application/x-protobuf")
    assert b"exported" in request.body


# ---- a message's spans --------------------------------------------------------------------------

FILE_TO_REST = """
connection "inbox" is file
  folder "inbox"
  settle 0s
end

connection "erp-api" is rest
  base url env "ERP_URL"
end

route "orders"
  from file "inbox"
  to rest "erp-api"
    post "/orders"
  dead letter to store
end
"""


async def test_without_tracing_no_span_is_made_and_no_trace_header_sent(tmp_path: Path, erp: ErpStandIn) -> None:
    routes = write_project(tmp_path, FILE_TO_REST, {"inbox": {"a.json": b"{}"}})
    async with embedded_stores(tmp_path / "data") as stores:
        engine = engine_for(tmp_path, routes, stores, env={"ERP_URL": erp.base_url})
        await run_once(engine)
    assert engine.telemetry.tracing is None
    [request] = erp.requests
    assert "traceparent" not in request.headers


INTAKE = """
connection "api" is http
  listen "127.0.0.1:PORT"
end

connection "erp-api" is rest
  base url env "ERP_URL"
end

route "intake"
  from http "api" post "/v1/orders"
  read json
  to rest "erp-api"
    post "/orders"
  retry 1 times backoff fixed 1s
  dead letter to store
end
"""


async def test_http_intake_to_rest_is_one_trace_continued_from_the_caller_and_passed_to_the_erp(
        tmp_path: Path, erp: ErpStandIn, spans: tuple[Tracing, InMemorySpanExporter]) -> None:
    tracing, exporter = spans
    erp.answer(Answer(503))  # the first attempt fails, the second delivers
    port = free_port()
    routes = write_project(tmp_path, INTAKE.replace("PORT", str(port)))
    async with embedded_stores(tmp_path / "data") as stores, aiohttp.ClientSession() as client:
        engine = engine_for(tmp_path, routes, stores, clock=ManualClock(), env={"ERP_URL": erp.base_url})
        engine.telemetry.tracing = tracing
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: engine.run(once=False, stop=stop, drain_timeout=5))
            with anyio.fail_after(10):
                while engine.telemetry.metrics.running != {"intake"}:
                    await anyio.sleep(0.01)
                async with client.post(f"http://127.0.0.1:{port}/v1/orders", data=b'{"po": "PO-1"}',
                                       headers={"Content-Type": "application/json",
                                                "traceparent": TRACEPARENT}) as answer:
                    assert answer.status == 202
                while engine.stats.routes["intake"].acked < 1:
                    await anyio.sleep(0.01)
            stop.set()

    finished = exporter.get_finished_spans()
    by_name = {}
    for span in finished:
        by_name.setdefault(span.name, []).append(span)
    [root] = by_name["process intake"]
    [read] = by_name["read json"]
    [deliver] = by_name['to rest "erp-api"']
    first, second = sorted(by_name['send rest "erp-api"'], key=lambda s: s.attributes["crossdock.attempt"])
    assert len(finished) == 5
    # one trace, the caller's, in a tree: root <- steps <- attempts
    root_trace, root_id, root_parent = hexes(root)
    assert (root_trace, root_parent, root.kind) == (TRACE_ID, PARENT_ID, SpanKind.CONSUMER)
    assert {hexes(span)[0] for span in finished} == {TRACE_ID}
    assert hexes(read)[2] == hexes(deliver)[2] == root_id
    assert hexes(first)[2] == hexes(second)[2] == hexes(deliver)[1]
    assert (first.status.status_code, first.status.description) == (StatusCode.ERROR, "RST503")
    assert second.status.status_code is StatusCode.UNSET
    assert [event.name for event in root.events] == ["received", "acked"]
    assert root.attributes["crossdock.outcome"] == "delivered"
    assert [event.name for event in deliver.events] == ["retried", "delivered"]
    assert deliver.attributes["crossdock.step.kind"] == "deliver"
    # the ERP got each attempt's own span as its parent, in the same trace
    assert [traceparent_parts(r.headers["traceparent"]) for r in erp.requests] == [
        (TRACE_ID, hexes(first)[1]), (TRACE_ID, hexes(second)[1])]


AMQP_RELAY = """
connection "broker" is amqp
  url env "AMQP_URL"
end

route "relay"
  from amqp "broker" queue "IN"
  to amqp "broker" queue "OUT"
  dead letter to store
end
"""


async def test_amqp_headers_carry_the_trace_in_and_out(
        tmp_path: Path, rabbitmq: str, spans: tuple[Tracing, InMemorySpanExporter]) -> None:
    tracing, exporter = spans
    inbound, outbound = f"test.trace-in.{uuid.uuid4().hex[:10]}", f"test.trace-out.{uuid.uuid4().hex[:10]}"
    connection = await aio_pika.connect(rabbitmq)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(inbound, durable=True)
        await channel.default_exchange.publish(
            aio_pika.Message(b'{"po": "PO-1"}', headers={"traceparent": TRACEPARENT}), routing_key=inbound)
        routes = write_project(tmp_path, AMQP_RELAY.replace("IN", inbound).replace("OUT", outbound))
        async with embedded_stores(tmp_path / "data") as stores:
            engine = engine_for(tmp_path, routes, stores, env={"AMQP_URL": rabbitmq})
            engine.telemetry.tracing = tracing
            await run_once(engine)
        queue = await channel.get_queue(outbound)
        published = await queue.get(fail=True)
        await published.ack()

    spans_by_name = {span.name: span for span in exporter.get_finished_spans()}
    root, attempt = spans_by_name["process relay"], spans_by_name[f'send amqp "broker" queue "{outbound}"']
    assert hexes(root)[::2] == (TRACE_ID, PARENT_ID)  # continued from the inbound message's headers
    assert attempt.kind is SpanKind.PRODUCER
    assert traceparent_parts(str(published.headers["traceparent"])) == (TRACE_ID, hexes(attempt)[1])


async def test_a_replayed_dead_letter_is_a_trace_of_its_own_resuming_at_the_failed_step(
        tmp_path: Path, erp: ErpStandIn, spans: tuple[Tracing, InMemorySpanExporter]) -> None:
    tracing, exporter = spans
    erp.answer(Answer(422))
    routes = write_project(tmp_path, FILE_TO_REST, {"inbox": {"a.json": b"{}"}})
    async with embedded_stores(tmp_path / "data") as stores:
        engine = engine_for(tmp_path, routes, stores, env={"ERP_URL": erp.base_url})
        engine.telemetry.tracing = tracing
        await run_once(engine)
        [entry] = await stores.dead_letters.list()
        exporter.clear()
        runner = engine.runners["orders"]
        async with AsyncExitStack() as stack:  # as `crossdock dlq replay` and the console do
            await runner.open_sinks(stack)
            await runner.replay(entry)

    finished = {span.name: span for span in exporter.get_finished_spans()}
    assert set(finished) == {"process orders", 'to rest "erp-api"', 'send rest "erp-api"'}
    root = finished["process orders"]
    assert [event.name for event in root.events] == ["replayed"]
    assert hexes(finished['to rest "erp-api"'])[2] == hexes(root)[1]
    assert [event.name for event in finished['to rest "erp-api"'].events] == ["delivered"]
