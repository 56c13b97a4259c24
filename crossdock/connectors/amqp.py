"""The `amqp` connector: queues and exchanges on RabbitMQ (AMQP 0-9-1), through aio-pika.

Features
- Source: consumes a queue with manual acknowledgment, at most `prefetch` messages unacknowledged.
  A delivery is acknowledged (basic.ack) only when the runtime says every sink confirmed it, or that it
  was filtered, a duplicate, or stored in the dead-letter store; with `on dead letter reject` a
  dead-lettered message is rejected instead (basic.reject without requeue), so that the broker routes
  it to the queue's dead-letter exchange. `release()` puts it back in the queue (basic.nack, requeue).
  `receive(once=True)` (`crossdock run --once`) takes messages one at a time (basic.get) until the
  queue has none ready, then stops.
- Identity and headers: the message id is the AMQP `message_id` property when the publisher set one,
  else a hash of the exchange, the routing key and the body, so a redelivery keeps its id (and two
  identical bodies published with the same key count as one message for sinks that dedupe). AMQP
  headers become the message's headers (text; arrays and tables as JSON), except the broker's own
  `x-death` and `x-delivery-count`; the `correlation_id` property becomes `X-Correlation-ID`. `meta`
  holds `queue`, `exchange`, `routing_key`, `redelivered` and, on quorum queues, `deliveries`.
- Sink: publishes persistent messages (delivery mode 2) with publisher confirms. `send` returns once
  the broker confirmed; concurrent sends share one channel, so many publishes are in flight, each
  awaiting its own confirm. The message id and correlation id go in the AMQP properties (a consumer
  can dedupe on the id), the headers in the AMQP headers, with `header` options added and, when
  tracing is on, `traceparent` (the publishing span, which a crossdock source reading the queue
  continues from). Messages are published `mandatory`: one the broker cannot route to any queue
  comes back and fails permanently (AMQ006), where a silent drop would lose it; a broker nack is
  transient (AMQ007).
- Topology: at open, a step declares what it names: the `exchange` (`exchange type`, `durable`), the
  `queue` (`durable`, `queue type`, dead-letter exchange and routing key, message TTL) and, when it
  names both, the queue's bindings to the exchange (each `binding key`; for a headers exchange one
  binding whose arguments are the `binding header` lines and `binding match`). Declaring is idempotent; a
  declaration that differs from what the broker has fails with AMQ005. With `declare no` the step only
  checks that they exist, for users without the `configure` permission. The default exchange and
  `amq.*` exchanges are never declared, only checked.
- Connection: aio-pika's robust connection, one per source or sink. When it is lost it reconnects,
  the waits between attempts growing with the outage (0.5s, 1s, 2s... up to `reconnect backoff up to`),
  and restores channels and topology; the source then consumes again on the new channel (its
  consumer is aiormq's, not aio-pika's: see `_Consumer`), and also when the broker cancels it because
  its queue was deleted, once the queue is declared again. A delivery received on a channel that
  died is never acknowledged on the new one (delivery tags belong to a channel): acknowledging it fails with AMQ010
  and the broker delivers it again, while what was acknowledged before stays acknowledged
  (at-least-once; deliveries still waiting in this process are dropped and come back the same way).
  A send that fails while the connection is down is transient (AMQ001) and retried per the route's policy.

Options (the connection's own on the connection block; the others on the connection or the step)
    url                   the broker, amqp://user:password@host:port/vhost (amqps:// for TLS)
    host, port, vhost     override the parts of `url` (default amqp://guest:guest@localhost:5672/)
    user, password        the login; the password only as `secret "NAME"` or `env "NAME"`
    connect timeout       how long to wait for the broker when opening, default 10s
    reconnect backoff up to   the longest wait between two reconnect attempts, default 30s
    queue                 source: the queue to consume (required); sink: a queue to declare, and to
                          publish to (through the default exchange) when there is no `exchange`
    exchange              sink: the exchange to publish to; source: an exchange to bind the queue to
    exchange type         direct (default), topic, fanout or headers
    routing key           sink: the key of every message, default the queue's name
    binding key           the key the queue is bound to the exchange with (repeat for several),
                          default the routing key, else the queue's name
    binding header "Name" "value"   headers exchange: a header the binding matches (repeat for several)
    binding match         headers exchange: all (default) of the binding headers, or any of them
    durable               declare exchange and queue durable, default yes
    queue type            classic (default) or quorum
    queue dead letter exchange, queue dead letter routing key, queue message ttl
                          the queue's x-dead-letter-exchange, x-dead-letter-routing-key, x-message-ttl
    declare               declare the topology at open, default yes; no: only check it exists
    prefetch              source: how many unacknowledged messages the broker may send ahead, default 50
    on dead letter        source: `ack` (default) or `reject` (to the queue's dead-letter exchange)
    mandatory             sink: fail messages the broker cannot route, default yes
    confirm timeout       sink: how long to wait for the broker's confirm, default 30s
    header "Name" = expr  sink: an AMQP header on every message

Lint (OPT006) refuses a sink naming neither exchange nor queue, a `binding key` or `binding header` on
a step that does not name both, queue arguments (`queue type`, `queue dead letter ...`, `queue message
ttl`) without a queue, and for headers exchanges: `binding header` on another type, a `binding key`
(ignored by them), a queue bound with no header (it would get every message), a binding header
whose value is an expression (the binding is declared once, not per message), and one whose name
starts with x- (RabbitMQ leaves those out of matching).

Error codes: AMQ001 the connection or channel is down, or the broker refused to open it (transient);
AMQ002 a timeout (transient); AMQ003 access refused (login, permissions, virtual host); AMQ004 an
exchange or queue does not exist; AMQ005 a declaration conflicts with the broker's (precondition
failed); AMQ006 an unroutable message came back; AMQ007 the broker nacked a publish (transient);
AMQ008 a body that is not bytes; AMQ009 options that cannot work (a sink with neither queue nor
exchange); AMQ010 an acknowledgment whose channel died (transient: the broker delivers the message
again); AMQ011 any other AMQP protocol error (a wrong port, a virtual host that does not exist).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, Self
from urllib.parse import quote

import aio_pika
import aiormq.abc
import anyio
from aio_pika.abc import (
    AbstractExchange,
    AbstractQueue,
    AbstractRobustChannel,
    DeliveryMode,
)
from aiormq import exceptions as amqp
from aiormq import spec
from aiormq.abc import DeliveredMessage
from yarl import URL

from crossdock.connectors.base import Capabilities, ConnectorContext, ConnectorSpec
from crossdock.dsl.diagnostics import DiagnosticBag, Span
from crossdock.dsl.options import Deferred, OptionSpec, OptionType, ResolvedOptions, Role, Scope
from crossdock.engine.errors import CrossdockError, PermanentError, TransientError, TransientKind
from crossdock.engine.mapping.expressions import is_missing
from crossdock.engine.message import CORRELATION_HEADER, Inbound, Message, Outcome, derived_id
from crossdock.ops.tracing import inject_context

log = logging.getLogger(__name__)

_SOURCE = frozenset({Role.SOURCE})
_SINK = frozenset({Role.SINK})
_CONNECTION = Scope.CONNECTION

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("url", OptionType.STRING,
               "The broker's address, amqp://user:password@host:port/vhost (amqps:// for TLS); read it from the "
               "environment when it holds a password. host, port, vhost, user and password override its parts.",
               example='env "AMQP_URL"', scope=_CONNECTION),
    OptionSpec("host", OptionType.STRING, "The broker's host name (default: localhost, or the url's).",
               example='"rabbit.internal"', scope=_CONNECTION),
    OptionSpec("port", OptionType.INTEGER, "The broker's AMQP port (default: 5672, 5671 for amqps, or the url's).",
               example="5672", scope=_CONNECTION),
    OptionSpec("vhost", OptionType.STRING, "The virtual host (default: /, or the url's).",
               example='"erp"', scope=_CONNECTION),
    OptionSpec("user", OptionType.STRING, "The user to log in as (default: guest, or the url's).",
               example='"crossdock"', scope=_CONNECTION),
    OptionSpec("password", OptionType.STRING, "The user's password.", example='secret "AMQP_PASSWORD"',
               secret=True, scope=_CONNECTION),
    OptionSpec("connect timeout", OptionType.DURATION, "How long to wait for the broker when opening a connection.",
               default=10.0, example="30s", scope=_CONNECTION),
    OptionSpec("reconnect backoff up to", OptionType.DURATION,
               "The longest wait between two attempts to reconnect after the connection was lost; the waits "
               "start at 0.5s and grow with the outage.",
               default=30.0, example="2m", scope=_CONNECTION),
    OptionSpec("queue", OptionType.STRING,
               "The queue to consume; declared at open (see `declare`).",
               example='"orders.in"', required=True, roles=_SOURCE),
    OptionSpec("queue", OptionType.STRING,
               "A queue to declare at open; without `exchange`, messages are published to it (through the "
               "default exchange).",
               example='"erp.orders.dlq"', roles=_SINK),
    OptionSpec("exchange", OptionType.STRING,
               "On a sink, the exchange to publish to; on a source, an exchange to bind the queue to. Declared "
               "at open, except the default exchange and amq.* exchanges, which are only checked.",
               example='"orders"'),
    OptionSpec("exchange type", OptionType.CHOICE, "The type of the exchange declared.",
               default="direct", example="topic", choices=("direct", "topic", "fanout", "headers")),
    OptionSpec("routing key", OptionType.STRING,
               "The routing key of every message published (default: the queue's name).",
               example='"orders.dal"', roles=_SINK),
    OptionSpec("binding key", OptionType.STRING,
               "When the step names both an exchange and a queue: a key the queue is bound to the exchange "
               "with; repeat the line for several (default: the routing key, else the queue's name).",
               example='"orders.*"', repeatable=True),
    OptionSpec("binding header", OptionType.HEADER,
               "For a headers exchange: a header the queue's binding matches, with the value it must have; "
               "repeat the line for several.",
               example='"warehouse" "DAL"', repeatable=True),
    OptionSpec("binding match", OptionType.CHOICE,
               "For a headers exchange: whether a message must carry all the binding headers or any one of them.",
               default="all", example="any", choices=("all", "any")),
    OptionSpec("durable", OptionType.BOOLEAN,
               "Declare the exchange and the queue durable, so that they survive a broker restart.",
               default=True, example="no"),
    OptionSpec("queue type", OptionType.CHOICE,
               "The type of the queue declared: quorum queues are replicated and count deliveries.",
               default="classic", example="quorum", choices=("classic", "quorum")),
    OptionSpec("queue dead letter exchange", OptionType.STRING,
               "Where the broker sends messages rejected from (`on dead letter reject`) or expiring in the "
               "queue declared (its x-dead-letter-exchange argument).",
               example='"erp.dlx"'),
    OptionSpec("queue dead letter routing key", OptionType.STRING,
               "The routing key of messages the broker dead-letters from the queue declared "
               "(x-dead-letter-routing-key; default: their own).",
               example='"erp.orders.failed"'),
    OptionSpec("queue message ttl", OptionType.DURATION,
               "How long a message may wait in the queue declared before the broker expires it "
               "(x-message-ttl), to its dead-letter exchange if it has one.",
               example="7 days"),
    OptionSpec("declare", OptionType.BOOLEAN,
               "Declare the exchange, queue and bindings at open; with no, only check that they exist "
               "(for users without the configure permission).",
               default=True, example="no"),
    OptionSpec("prefetch", OptionType.INTEGER,
               "How many unacknowledged messages the broker may send ahead to this source.",
               default=50, example="200", roles=_SOURCE),
    OptionSpec("on dead letter", OptionType.CHOICE,
               "What to do with a message the route dead-lettered (it is in the dead-letter store already): "
               "ack removes it from the queue; reject hands it to the queue's dead-letter exchange.",
               default="ack", example="reject", choices=("ack", "reject"), roles=_SOURCE),
    OptionSpec("mandatory", OptionType.BOOLEAN,
               "Fail (permanently) a message the broker cannot route to any queue, instead of letting the "
               "broker drop it.",
               default=True, example="no", roles=_SINK),
    OptionSpec("confirm timeout", OptionType.DURATION,
               "How long to wait for the broker to confirm a message before the send fails (and is retried).",
               default=30.0, example="1m", roles=_SINK),
    OptionSpec("header", OptionType.HEADER, "An AMQP header set on every message published.",
               example='"x-warehouse" = ship_from', repeatable=True, roles=_SINK, scope=Scope.STEP),
)

_QUEUE_ARGUMENTS = ("queue_type", "queue_dead_letter_exchange", "queue_dead_letter_routing_key", "queue_message_ttl")


def check_options(options: ResolvedOptions, role: Role, span: Span, bag: DiagnosticBag) -> None:
    """Lint rules the option schema cannot say: where a sink publishes, and options that need another."""
    named = options.values.keys()
    if role is Role.SINK and "exchange" not in named and "queue" not in named:
        bag.error("OPT006", "amqp sink needs 'exchange' or 'queue': where to publish", span,
                  'add a line such as: exchange "orders" (with routing key "...") or queue "erp.orders"')
    for key in ("binding_key", "binding_header"):
        if key in named and not {"exchange", "queue"} <= named:
            bag.error("OPT006", f"'{key.replace('_', ' ')}' binds the step's queue to its exchange, but the step "
                      "does not name both", options.span(key) or span,
                      'add the missing line: exchange "..." or queue "..."')
    _check_headers_binding(options, span, bag)
    for key in _QUEUE_ARGUMENTS:
        # `queue type` always has its default: only a line written on the step or connection counts
        written = key in named and (key != "queue_type" or options.get(key) != "classic")
        if written and "queue" not in named:
            name = key.replace("_", " ")
            bag.error("OPT006", f"'{name}' describes the queue the step declares, but it names no queue",
                      options.span(key) or span, 'add a line: queue "..."')


def _check_headers_binding(options: ResolvedOptions, span: Span, bag: DiagnosticBag) -> None:
    """A headers exchange binds by `binding header` lines, with text values; nothing else does."""
    named = options.values.keys()
    headers = options.get("exchange_type") == "headers"
    if "binding_header" in named and not headers:
        bag.error("OPT006", "'binding header' is for a headers exchange", options.span("binding_header") or span,
                  "add the line: exchange type headers (or bind with 'binding key')")
    if headers and "binding_key" in named:
        bag.error("OPT006", "a headers exchange ignores routing and binding keys", options.span("binding_key") or span,
                  'bind with: binding header "name" "value"')
    if headers and {"exchange", "queue"} <= named and "binding_header" not in named:
        bag.error("OPT006", "the queue would be bound to the headers exchange with no header to match, so it "
                  "would get every message", options.span("exchange") or span,
                  'add a line such as: binding header "warehouse" "DAL"')
    entries = options.values.get("binding_header")
    for entry in entries if isinstance(entries, list) else []:
        name, value = entry.value
        if str(name).lower().startswith("x-"):
            bag.error("OPT006", f"RabbitMQ does not match headers whose name starts with x-, so '{name}' would be "
                      "ignored and the binding would take more than it says", entry.span,
                      "publish and bind the header under a name without x- (for example: warehouse)")
        elif not isinstance(value, str | Deferred):
            bag.error("OPT006", "'binding header' takes a value in quotes: the binding is declared once, not per "
                      "message", entry.span, 'write: binding header "warehouse" "DAL"')


SPEC = ConnectorSpec(
    kind="amqp",
    description="Queues and exchanges on RabbitMQ (AMQP 0-9-1): consume with acknowledgments, publish with "
                "publisher confirms.",
    roles=frozenset({Role.SOURCE, Role.SINK}),
    options=OPTIONS,
    connection="optional",
    capabilities=Capabilities(supports_confirm=True, dedupes_by_message_id=False),
    check=check_options,
)

DEFAULT_URL = "amqp://guest:guest@localhost:5672/"
RECONNECT_FIRST_WAIT = 0.5
CANCEL_TIMEOUT = 5.0
# Broker bookkeeping, not part of the message: republishing x-death would confuse the broker's own.
_BROKER_HEADERS = frozenset({"x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                             "x-delivery-count"})
# What aio-pika and aiormq raise; anything else is a bug and is left to the runtime (X001).
_AMQP_ERRORS = (amqp.AMQPError, amqp.ChannelInvalidStateError, ConnectionError, OSError, TimeoutError)


def _option(options: Mapping[str, Any], key: str) -> Any:
    """The option's value, or its declared default when the runtime left it out."""
    if key in options:
        return options[key]
    return next(spec.default for spec in OPTIONS if spec.key == key)


# ---- errors ---------------------------------------------------------------------------------------


def classify(error: BaseException, action: str) -> CrossdockError:
    """`error`, raised by aio-pika while trying to `action`, as a transient or permanent error (AMQ...)."""
    if isinstance(error, CrossdockError):
        return error
    message = f"cannot {action}: {_reason(error)}"
    if isinstance(error, amqp.PublishError):
        return PermanentError(f"{message} (no queue is bound for this routing key)", code="AMQ006")
    if isinstance(error, amqp.DeliveryError):
        return TransientError(message, kind=TransientKind.UNAVAILABLE, code="AMQ007")
    if isinstance(error, TimeoutError):
        return TransientError(message, kind=TransientKind.TIMEOUT, code="AMQ002")
    if isinstance(error, amqp.ChannelAccessRefused | amqp.ProbableAuthenticationError | amqp.AuthenticationError
                  | amqp.ConnectionNotAllowed):
        return PermanentError(message, code="AMQ003")
    if isinstance(error, amqp.ChannelNotFoundEntity):
        return PermanentError(message, code="AMQ004")
    if isinstance(error, amqp.ChannelPreconditionFailed):
        return PermanentError(message, code="AMQ005")
    if isinstance(error, amqp.IncompatibleProtocolError | amqp.ProtocolSyntaxError):
        # aiormq reports a refused virtual host as an unexpected frame, and a non-AMQP port this way.
        return PermanentError(f"{message} (is it an AMQP 0-9-1 port, and does the virtual host exist?)",
                              code="AMQ011")
    if isinstance(error, amqp.AMQPConnectionError | amqp.ChannelClosed | amqp.ChannelInvalidStateError
                  | ConnectionError | OSError):
        return TransientError(message, kind=TransientKind.CONNECTION, code="AMQ001")
    return PermanentError(message, code="AMQ011")


def _reason(error: BaseException) -> str:
    if isinstance(error, amqp.ChannelInvalidStateError):
        return "the channel is closed (the connection was lost; reconnecting)"
    if isinstance(error, TimeoutError):
        return "timed out"
    text = str(error) or repr(error)
    return f"{type(error).__name__}: {text}"


# ---- connection -----------------------------------------------------------------------------------


def reconnect_wait(outage: float, longest: float, first: float = RECONNECT_FIRST_WAIT) -> float:
    """How long to wait before the next reconnect attempt: as long as the outage so far, within
    [`first`, `longest`], so attempts come at 0, 0.5s, 1s, 2s, 4s... after the connection was lost."""
    return min(longest, max(first, outage))


class BackoffConnection(aio_pika.RobustConnection):
    """aio-pika's robust connection, reconnecting with backoff instead of at a fixed interval.

    aio-pika reads `reconnect_interval` before each wait between attempts; here it comes from how long
    the connection has been down (see :func:`reconnect_wait`), so a blip is bridged at once and a long
    outage is not hammered.
    """

    def __init__(self, url: URL, *, longest_wait: float, **kwargs: Any) -> None:
        self._down_since: float | None = None
        self._first_wait = RECONNECT_FIRST_WAIT
        self._longest_wait = longest_wait
        if "reconnect_interval" not in url.query:  # aio-pika's own default is a fixed 5s
            kwargs["reconnect_interval"] = RECONNECT_FIRST_WAIT
        super().__init__(url, **kwargs)

    @property  # type: ignore[override]
    def reconnect_interval(self) -> float:
        if self._down_since is None:
            return self._first_wait
        return reconnect_wait(self.loop.time() - self._down_since, self._longest_wait, self._first_wait)

    @reconnect_interval.setter
    def reconnect_interval(self, value: float) -> None:
        # aio-pika sets its fixed interval (URL `?reconnect_interval=`) here: it becomes the first wait.
        self._first_wait = float(value)

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        if self._down_since is None:
            self._down_since = self.loop.time()
        await super()._on_connection_close(closing)

    async def _on_connected(self) -> None:
        await super()._on_connected()
        self._down_since = None


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Where the broker is and how to reach it, from the connection's options."""

    url: URL
    connect_timeout: float
    longest_wait: float
    name: str

    @classmethod
    def from_options(cls, options: Mapping[str, Any], context: ConnectorContext) -> ConnectionSettings:
        try:
            url = URL(str(options.get("url") or DEFAULT_URL))
            if url.scheme not in ("amqp", "amqps") or not url.host:
                raise ValueError("it must look like amqp://host or amqps://host")
            if options.get("host"):
                url = url.with_host(str(options["host"]))
            if options.get("port"):
                url = url.with_port(int(options["port"]))
            if options.get("vhost"):
                url = url.with_path("/" + quote(str(options["vhost"]), safe=""), encoded=True)
            if options.get("user"):
                url = url.with_user(str(options["user"]))
            if options.get("password"):
                url = url.with_password(str(options["password"]))
        except ValueError as error:
            raise PermanentError(f"amqp: the broker's url is not valid: {error}", code="AMQ009") from error
        return cls(url, float(_option(options, "connect_timeout")),
                   float(_option(options, "reconnect_backoff_up_to")), context.owner)

    @property
    def safe_url(self) -> str:
        """The url without its password, for messages."""
        return str(self.url.with_password("***") if self.url.password else self.url)


async def open_connection(settings: ConnectionSettings) -> BackoffConnection:
    """A connected robust connection, named after its route step (the management UI shows the name)."""
    connection = BackoffConnection(settings.url, longest_wait=settings.longest_wait,
                                   client_properties={"connection_name": f"crossdock: {settings.name}"})
    try:
        await connection.connect(timeout=settings.connect_timeout)
    except BaseException as error:
        with anyio.CancelScope(shield=True):
            await connection.close()
        if isinstance(error, _AMQP_ERRORS):
            raise classify(error, f"connect to {settings.safe_url}") from error
        raise
    return connection


# ---- topology -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Topology:
    """The exchange, queue and bindings a step names, declared (or checked) at open."""

    exchange: str
    exchange_type: str
    queue: str | None
    binding_keys: tuple[str, ...]
    binding_arguments: dict[str, Any]
    durable: bool
    arguments: dict[str, Any]
    declare: bool

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Topology:
        queue = options.get("queue") or None
        arguments: dict[str, Any] = {}
        if _option(options, "queue_type") == "quorum":
            # classic is the default: naming it would conflict with queues declared without the argument
            arguments["x-queue-type"] = "quorum"
        if options.get("queue_dead_letter_exchange") is not None:
            arguments["x-dead-letter-exchange"] = str(options["queue_dead_letter_exchange"])
        if options.get("queue_dead_letter_routing_key") is not None:
            arguments["x-dead-letter-routing-key"] = str(options["queue_dead_letter_routing_key"])
        if options.get("queue_message_ttl") is not None:
            arguments["x-message-ttl"] = round(float(options["queue_message_ttl"]) * 1000)
        exchange_type = str(_option(options, "exchange_type"))
        keys = options.get("binding_key") or [options.get("routing_key") or queue or ""]
        binding_arguments: dict[str, Any] = {}
        if exchange_type == "headers":
            keys = [""]  # a headers exchange routes by the binding's arguments alone
            binding_arguments = {"x-match": str(_option(options, "binding_match")),
                                 **{str(name): str(value) for name, value in options.get("binding_header") or ()}}
        return cls(
            exchange=str(options.get("exchange") or ""),
            exchange_type=exchange_type,
            queue=str(queue) if queue else None,
            binding_keys=tuple(str(key) for key in keys),
            binding_arguments=binding_arguments,
            durable=bool(_option(options, "durable")),
            arguments=arguments,
            declare=bool(_option(options, "declare")),
        )

    async def apply(self, channel: AbstractRobustChannel) -> tuple[AbstractExchange, AbstractQueue | None]:
        """Declare (or, with `declare no`, check) everything; returns the exchange and the queue.

        The robust channel remembers what was declared here and declares it again after a reconnect.
        """
        exchange: AbstractExchange = channel.default_exchange
        if self.exchange:
            exchange = await channel.declare_exchange(
                self.exchange, type=self.exchange_type, durable=self.durable,
                passive=not self.declare or self.exchange.startswith("amq."))
        queue = None
        if self.queue is not None:
            queue = await channel.declare_queue(self.queue, durable=self.durable, arguments=self.arguments or None,
                                                passive=not self.declare)
            if self.exchange and self.declare:
                for key in self.binding_keys:
                    await queue.bind(exchange, key, arguments=self.binding_arguments or None)
        return exchange, queue

    def describe(self) -> str:
        names = [f"exchange '{self.exchange}'"] if self.exchange else []
        names += [f"queue '{self.queue}'"] if self.queue else []
        return " and ".join(names) or "the default exchange"


# ---- source ---------------------------------------------------------------------------------------


def content_id(exchange: str, routing_key: str, body: bytes) -> str:
    """The id of a message published without a message_id: the same for every delivery of it."""
    return derived_id("amqp", exchange, routing_key, hashlib.sha256(body).hexdigest())


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, bool | int | float | Decimal):
        return str(value)
    return json.dumps(value, default=str, separators=(",", ":"))


async def _opened(settings: ConnectionSettings, topology: Topology, *, prefetch: int | None,
                  **channel_options: Any) -> tuple[BackoffConnection, AbstractExchange, AbstractQueue | None]:
    """A connection, a channel on it (with `prefetch` when given) and the topology declared there. On
    failure the connection is closed and AMQP errors are classified."""
    connection = await open_connection(settings)
    try:
        channel = await connection.channel(**channel_options)
        if prefetch is not None:
            await channel.set_qos(prefetch_count=prefetch)
        exchange, queue = await topology.apply(channel)
    except BaseException as error:
        await _closed(connection)
        if isinstance(error, _AMQP_ERRORS):
            raise classify(error, f"open {topology.describe()} on {settings.safe_url}") from error
        raise
    return connection, exchange, queue


async def _closed(connection: BackoffConnection | None) -> None:
    """Close `connection` (if any) even when the caller is being cancelled."""
    if connection is not None:
        with anyio.CancelScope(shield=True):
            await connection.close()


class _Consumer:
    """The source's consumer, registered with aiormq on the queue's channel and registered again on the
    channel aio-pika opens after a reconnection.

    aio-pika's `Queue.consume` would wrap every delivery in an IncomingMessage (a copy of each property)
    and run the callback as a task of its own, on top of the task aiormq runs it in: the source reads
    aiormq's DeliveredMessage as it comes, one task and one copy less a message. A consumer the
    broker cancels (its queue was deleted) is started again the same way, on the queue aio-pika
    declares again.
    """

    def __init__(self, queue: AbstractQueue, buffer: asyncio.Queue[DeliveredMessage]) -> None:
        self._queue = queue
        self._buffer = buffer
        self._tag: str | None = None
        self._underlay: aiormq.abc.AbstractChannel | None = None
        self._restarting: asyncio.Task[None] | None = None

    async def _deliver(self, message: DeliveredMessage) -> None:
        self._buffer.put_nowait(message)  # unbounded, but the broker sends at most `prefetch` unacknowledged

    async def start(self) -> None:
        """Consume on the queue's current channel; call `stop` to end."""
        underlay = await self._queue.channel.get_underlay_channel()
        if underlay is not self._underlay:
            underlay.on_consumer_cancel_callbacks.add(self._cancelled)
        consuming = await underlay.basic_consume(self._queue.name, self._deliver, no_ack=False)
        self._underlay, self._tag = underlay, consuming.consumer_tag
        channel = self._queue.channel
        if isinstance(channel, AbstractRobustChannel):
            channel.reopen_callbacks.add(self._reopened)

    async def _reopened(self, *_: object) -> None:
        await self._again("the channel was opened again after a reconnection")

    def _cancelled(self, frame: spec.Basic.Cancel) -> None:
        # Called by the channel's frame reader, which must go on reading for basic.consume to be answered.
        if frame.consumer_tag == self._tag and self._restarting is None:
            self._restarting = asyncio.get_running_loop().create_task(
                self._again("the broker cancelled the consumer (was the queue deleted?)"))
            self._restarting.add_done_callback(self._restarted)

    def _restarted(self, _: object) -> None:
        self._restarting = None

    async def _again(self, why: str) -> None:
        log.warning("amqp source on queue '%s': consuming again: %s", self._queue.name, why)
        try:
            await self.start()
        except _AMQP_ERRORS as error:  # its channel closed: once aio-pika opened it again, `_reopened` runs
            log.warning("amqp source on queue '%s': could not consume again yet: %s", self._queue.name,
                        classify(error, "consume"))

    async def stop(self) -> None:
        """Cancel the consumer. Bounded: during an outage the broker cannot answer, and closing the
        channel ends the consumer as well, so a cancel that fails or times out changes nothing."""
        channel = self._queue.channel
        if isinstance(channel, AbstractRobustChannel):
            channel.reopen_callbacks.discard(self._reopened)
        if self._restarting is not None:
            self._restarting.cancel()
        underlay, tag = self._underlay, self._tag
        if underlay is None or tag is None:
            return
        underlay.on_consumer_cancel_callbacks.discard(self._cancelled)
        if underlay.is_closed:
            return
        with anyio.move_on_after(CANCEL_TIMEOUT, shield=True), contextlib.suppress(*_AMQP_ERRORS):
            await underlay.basic_cancel(tag)


def _channel_open(delivery: DeliveredMessage) -> bool:
    return not delivery.channel.is_closed


def _delivery_tag(delivery: DeliveredMessage) -> int:
    """The tag the broker gave the delivery: a basic.deliver or a basic.get-ok always carries one."""
    tag = delivery.delivery_tag
    if tag is None:  # a returned message or an empty get: neither is ever handed to the runtime
        raise PermanentError("an AMQP message without a delivery tag cannot be acknowledged", code="AMQ011")
    return tag


class AmqpSource:
    """Consumes one queue; see the module docstring."""

    def __init__(self, settings: ConnectionSettings, topology: Topology, *, prefetch: int,
                 reject_dead_letters: bool) -> None:
        self.settings = settings
        self.topology = topology
        self._prefetch = prefetch
        self._reject_dead_letters = reject_dead_letters
        self._connection: BackoffConnection | None = None
        self._queue: AbstractQueue | None = None

    async def __aenter__(self) -> Self:
        self._connection, _, self._queue = await _opened(self.settings, self.topology, prefetch=self._prefetch,
                                                          publisher_confirms=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Deliveries not acknowledged go back to the queue when the channel closes.
        connection, self._connection = self._connection, None
        await _closed(connection)

    @property
    def queue(self) -> AbstractQueue:
        if self._queue is None:
            raise PermanentError("amqp source is not open", code="AMQ009")
        return self._queue

    async def receive(self, *, once: bool) -> AsyncIterator[Inbound]:
        """Yield deliveries as they come; with `once`, those ready now, then stop."""
        if once:
            while (delivery := await self._get()) is not None:
                yield self._inbound(delivery)
            return
        buffer: asyncio.Queue[DeliveredMessage] = asyncio.Queue()
        consumer = _Consumer(self.queue, buffer)
        try:
            await consumer.start()
        except _AMQP_ERRORS as error:
            raise classify(error, f"consume from queue '{self.queue.name}'") from error
        try:
            while True:
                delivery = await buffer.get()
                if _channel_open(delivery):
                    yield self._inbound(delivery)
                # else: it came on a channel that has died since; the broker delivers it again
        finally:
            await consumer.stop()

    async def _get(self) -> DeliveredMessage | None:
        try:  # the broker answers a get at once; waiting longer than for a connection means it is stuck
            channel = await self.queue.channel.get_underlay_channel()
            got = await channel.basic_get(self.queue.name, no_ack=False, timeout=self.settings.connect_timeout)
        except _AMQP_ERRORS as error:
            raise classify(error, f"get from queue '{self.queue.name}'") from error
        return None if isinstance(got.delivery, spec.Basic.GetEmpty) else got

    def _inbound(self, delivery: DeliveredMessage) -> Inbound:
        properties = delivery.header.properties
        amqp_headers = properties.headers or {}
        headers = {name: _text(value) for name, value in amqp_headers.items() if name not in _BROKER_HEADERS}
        if properties.correlation_id:
            headers[CORRELATION_HEADER] = properties.correlation_id
        exchange, routing_key = delivery.exchange or "", delivery.routing_key or ""
        meta: dict[str, Any] = {"queue": self.queue.name, "exchange": exchange, "routing_key": routing_key,
                                "redelivered": bool(delivery.redelivered)}
        count = amqp_headers.get("x-delivery-count")
        if isinstance(count, int):  # quorum queues count earlier deliveries
            meta["deliveries"] = count + 1
        return Inbound(
            body=delivery.body,
            message_id=properties.message_id or content_id(exchange, routing_key, delivery.body),
            headers=headers,
            meta=meta,
            ack=partial(self._ack, delivery),
            release=partial(self._release, delivery),
        )

    async def _ack(self, delivery: DeliveredMessage, outcome: Outcome) -> None:
        # On the delivery's own channel: a delivery tag means another message on any other, so aiormq
        # refuses once that channel closed. Not waiting for the frame to leave the socket buffer: that
        # promises nothing more (the broker has it only once it reads it), and costs a wake-up. Closing
        # the source closes its channel first, which sends what is still queued.
        tag = _delivery_tag(delivery)
        try:
            if outcome is Outcome.DEAD_LETTERED and self._reject_dead_letters:
                await delivery.channel.basic_reject(tag, requeue=False, wait=False)
            else:
                await delivery.channel.basic_ack(tag, wait=False)
        except amqp.ChannelInvalidStateError as error:
            raise TransientError(
                "cannot acknowledge: the channel it came on closed (the connection was lost); the broker "
                "delivers the message again", kind=TransientKind.CONNECTION, code="AMQ010") from error
        except _AMQP_ERRORS as error:
            raise classify(error, "acknowledge a message") from error

    async def _release(self, delivery: DeliveredMessage) -> None:
        if not _channel_open(delivery):
            return  # the broker put it back in the queue when the channel closed
        try:
            await delivery.channel.basic_nack(_delivery_tag(delivery), requeue=True)
        except _AMQP_ERRORS as error:
            raise classify(error, "release a message") from error


# ---- sink -----------------------------------------------------------------------------------------


class AmqpSink:
    """Publishes to one exchange (or queue) with publisher confirms; see the module docstring."""

    def __init__(self, settings: ConnectionSettings, topology: Topology, *, routing_key: str, mandatory: bool,
                 confirm_timeout: float, header_options: bool) -> None:
        self.settings = settings
        self.topology = topology
        self.routing_key = routing_key
        self._mandatory = mandatory
        self._confirm_timeout = confirm_timeout
        self._header_options = header_options
        self._connection: BackoffConnection | None = None
        self._exchange: AbstractExchange | None = None

    async def __aenter__(self) -> Self:
        self._connection, self._exchange, _ = await _opened(self.settings, self.topology, prefetch=None,
                                                             publisher_confirms=True, on_return_raises=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        connection, self._connection = self._connection, None
        await _closed(connection)

    async def send(self, message: Message) -> None:
        """Publish the message; returns once the broker confirmed it."""
        if self._exchange is None:
            raise PermanentError("amqp sink is not open", code="AMQ009")
        if not isinstance(message.body, bytes | bytearray):
            raise PermanentError(
                f"amqp sink needs an encoded body (bytes), got {type(message.body).__name__}", code="AMQ008")
        headers: dict[str, Any] = {k: v for k, v in message.headers.items()
                                   if k.lower() != CORRELATION_HEADER.lower()}
        if self._header_options:  # rendered by the runtime; otherwise meta["headers"] is not ours to read
            headers.update((name, _text(value)) for name, value in message.meta.get("headers", ())
                           if not is_missing(value))
        inject_context(headers)
        properties = spec.Basic.Properties(
            delivery_mode=DeliveryMode.PERSISTENT.value, message_id=message.message_id,
            correlation_id=message.correlation_id, headers=headers or None,
            content_type=message.meta.get("content_type"),
        )
        try:
            # aiormq's channel under aio-pika's (its public get_underlay_channel, the new one after a
            # reconnection): an aio_pika.Message with Exchange.publish cost ~18 µs a message more.
            # `wait=False`: the confirm is awaited, not the frame's leaving the socket buffer first (the
            # confirm implies it; a channel that closes fails the confirm), one wake-up less a message.
            if self._exchange.channel.is_closed:  # as Exchange.publish checks: the connection is down
                raise amqp.ChannelInvalidStateError(f"{self._exchange.channel!r} closed")
            channel = await self._exchange.channel.get_underlay_channel()
            await channel.basic_publish(bytes(message.body), exchange=self._exchange.name,
                                        routing_key=self.routing_key, properties=properties,
                                        mandatory=self._mandatory, timeout=self._confirm_timeout, wait=False)
        except _AMQP_ERRORS as error:
            raise classify(error, f"publish to {self.topology.describe()} with routing key "
                                  f"'{self.routing_key}'") from error


# ---- entry points ---------------------------------------------------------------------------------


def open_source(options: Mapping[str, Any], context: ConnectorContext) -> AmqpSource:
    """An amqp source for resolved `options` (keys as in :data:`OPTIONS`)."""
    if not options.get("queue"):
        raise PermanentError("amqp source needs 'queue'", code="AMQ009")
    return AmqpSource(ConnectionSettings.from_options(options, context), Topology.from_options(options),
                      prefetch=int(_option(options, "prefetch")),
                      reject_dead_letters=_option(options, "on_dead_letter") == "reject")


def open_sink(options: Mapping[str, Any], context: ConnectorContext) -> AmqpSink:
    """An amqp sink for resolved `options` (keys as in :data:`OPTIONS`)."""
    topology = Topology.from_options(options)
    if not topology.exchange and topology.queue is None:
        raise PermanentError("amqp sink needs 'exchange' or 'queue': where to publish", code="AMQ009")
    routing_key = str(options.get("routing_key") or topology.queue or "")
    return AmqpSink(ConnectionSettings.from_options(options, context), topology, routing_key=routing_key,
                    mandatory=bool(_option(options, "mandatory")),
                    confirm_timeout=float(_option(options, "confirm_timeout")),
                    header_options=bool(options.get("header")))
