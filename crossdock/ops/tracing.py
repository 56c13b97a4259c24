"""Traces: OpenTelemetry spans per message, per step and per delivery attempt, off unless asked for.

Tracing is on when the standard environment variables ask for an exporter (:func:`tracing_from_env`):
`OTEL_TRACES_EXPORTER=otlp` (OTLP over HTTP, to `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; setting one of those alone also turns it on) or `console`
(spans as JSON on stderr), several separated by commas; `none` or `OTEL_SDK_DISABLED=true` keep it
off. The SDK reads the rest itself: `OTEL_SERVICE_NAME` (default `crossdock`),
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_HEADERS`...
Off, no SDK provider is installed, no span is made and the runtime's calls return at once.

The span tree of a message: `process <route>` (kind consumer; its parent is the `traceparent` the
message arrived with, from HTTP request headers or AMQP message headers, else it starts a trace),
with a child per step named after the step (`read json`, `map with "..."`, `to rest "erp-api"`), and
under a sink's step one `send <connector>` span per attempt. Stage transitions are span events;
a dead-lettered step's span has status error with the error code. Outbound requests carry the
current span as `traceparent` (:func:`inject_context`): REST calls in their HTTP headers, AMQP
publishes in their message headers (properties).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode

from crossdock import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from crossdock.engine.message import Message
    from crossdock.engine.plan import StepPlan

log = logging.getLogger("crossdock.tracing")

_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})
# Connectors whose sends are requests answered by the peer; the others hand messages to a broker or store.
_CLIENT_KINDS = frozenset({"rest", "http", "sftp", "file"})
EXPORTERS = ("otlp", "console")


class _HeaderGetter(Getter[Mapping[str, str]]):
    """Reads propagation headers whatever their case (HTTP lowercases them, AMQP keeps the sender's)."""

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            lowered = key.lower()
            value = next((v for k, v in carrier.items() if k.lower() == lowered), None)
        return None if value is None else [str(value)]

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _HeaderGetter()


def inject_context(headers: MutableMapping[str, Any]) -> None:
    """Put the current span's context in outgoing `headers` (`traceparent`, `tracestate`).

    Without a current span (tracing off) the headers are left as they are. With one, trace headers
    already there (copied from the message's source) are replaced, never sent twice.
    """
    if not trace.get_current_span().get_span_context().is_valid:
        return
    for name in {name for name in headers if name.lower() in _TRACE_HEADERS}:
        del headers[name]  # a multidict deletes every value of the name at once
    propagate.inject(headers)


class Scope:
    """A started span made current in the running task, until :meth:`close`."""

    __slots__ = ("_token", "span")

    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self._token = otel_context.attach(trace.set_span_in_context(span))

    def close(self, error: BaseException | None = None) -> None:
        """End the span (marked failed by `error`, when given) and restore the previous context."""
        if error is not None and not isinstance(error, GeneratorExit):
            code = getattr(error, "code", None) or type(error).__name__
            self.span.set_status(Status(StatusCode.ERROR, str(code)))
            self.span.record_exception(error)
        self.span.end()
        otel_context.detach(self._token)


class Tracing:
    """Spans from `provider` (an SDK TracerProvider); see the module docstring for their tree."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("crossdock", __version__)

    def message(self, route: str, message: Message) -> Scope:
        """The root span of a received message, child of the context its headers carry (if any)."""
        parent = propagate.extract(message.headers, getter=_GETTER)
        span = self.tracer.start_span(f"process {route}", context=parent, kind=SpanKind.CONSUMER, attributes={
            "crossdock.route": route, "crossdock.correlation_id": message.correlation_id,
            "crossdock.message_id": message.message_id})
        return Scope(span)

    def step(self, route: str, step: StepPlan, kind: str, message: Message) -> Scope:
        """A step's span, child of the current one (the message's)."""
        span = self.tracer.start_span(step.label, attributes={
            "crossdock.route": route, "crossdock.step": step.label, "crossdock.step.kind": kind,
            "crossdock.step.path": step.path, "crossdock.correlation_id": message.correlation_id})
        return Scope(span)

    def attempt(self, step: StepPlan, message: Message) -> Scope:
        """One try at a sink, child of the step's span; outbound calls made inside carry it."""
        endpoint = getattr(step, "endpoint", None)
        connector = getattr(endpoint, "kind", "")
        kind = SpanKind.CLIENT if connector in _CLIENT_KINDS else SpanKind.PRODUCER
        span = self.tracer.start_span(f"send {getattr(endpoint, 'label', step.label)}", kind=kind, attributes={
            "crossdock.step": step.label, "crossdock.attempt": message.attempt,
            "crossdock.message_id": message.message_id})
        return Scope(span)

    def event(self, event: str, step: str | None, detail: Mapping[str, Any]) -> None:
        """Note a stage transition on the current span; a dead letter marks it failed with its code."""
        span = trace.get_current_span()
        if not span.is_recording():
            return
        attributes: dict[str, Any] = {"crossdock.step": step} if step else {}
        for key in ("code", "attempt", "attempts", "wait", "outcome", "status"):
            value = detail.get(key)
            if isinstance(value, str | int | float | bool):
                attributes[f"crossdock.{key}"] = value
        span.add_event(event, attributes)
        if event == "dead-lettered":
            span.set_status(Status(StatusCode.ERROR, str(detail.get("code", ""))))
        elif event == "acked" and "outcome" in detail:
            span.set_attribute("crossdock.outcome", str(detail["outcome"]))

    def shutdown(self) -> None:
        """Export what is still buffered and stop the provider's processors."""
        self.provider.shutdown()


def tracing_from_env(env: Mapping[str, str] | None = None) -> Tracing | None:
    """A Tracing configured from the OTEL_ variables in `env` (default os.environ), or None when off."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    names = [name.strip().lower() for name in env.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    if not names and (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        names = ["otlp"]
    names = [name for name in names if name != "none"]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        log.warning("tracing: exporter(s) %s not available (OTEL_TRACES_EXPORTER takes %s); left out",
                    ", ".join(unknown), ", ".join(EXPORTERS))
    names = [name for name in names if name in EXPORTERS]
    if not names:
        return None
    # The SDK is imported only now: without tracing, crossdock never loads it.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "crossdock"}))
    provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER
    for name in names:
        exporter: SpanExporter
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()  # endpoint, headers, timeout from OTEL_EXPORTER_OTLP_*
        else:
            exporter = ConsoleSpanExporter(out=sys.stderr)  # stdout carries the run summary
        provider.add_span_processor(BatchSpanProcessor(exporter))
    log.info("tracing: exporting spans to %s", ", ".join(names))
    return Tracing(provider)
