"""The `rest` connector: HTTP requests to a REST API, as a route's sink and as a client for lookups.

Features
- Sink: each message is one request, `post "/api/v2/orders"` (or `put`, `patch`, `get`, `delete`),
  the path joined to the connection's `base url` (`https://erp/api` + `/v2/orders` is
  `https://erp/api/v2/orders`). The path is a template rendered per message (`"/orders/{{ po_number }}"`).
  The body is the encoded message (none for `get` and `delete`), labelled with the content type of the
  sink's format (application/json, application/edi-x12...) unless `content type` or
  `message.meta["content_type"]` says otherwise. `send` returns once the API answered 2xx.
- Headers: the step's `header "Name" = expression` lines (rendered by the runtime), `Idempotency-Key`
  with the message's idempotency key (from `skip duplicates`) unless a header line sets it,
  `X-Correlation-ID` always, and `traceparent` (W3C trace context) when tracing is on. Headers the
  source received are never forwarded.
- Auth (on the connection): bearer token, basic, an API key header, or OAuth2 client credentials; the
  OAuth2 token is cached until shortly before it expires and fetched again, once per request, when the
  API answers 401. Secrets never appear in logs, errors or dead letters; auth headers win over header
  lines of the same name.
- One connection pool per sink (an aiohttp ClientSession, opened and closed with the sink): `max
  connections`, `keep alive`, and `connect timeout`, `read timeout` (the longest silence while waiting
  for the answer) and `timeout` (the whole request). Redirects are not followed. At most `max response
  size` bytes of an answer are read; the rest is dropped with the connection.
- Classification: 2xx delivered. Transient (retried per policy): 408 and 504 (kind timeout), 429
  (throttled), 502 and 503 (unavailable), other 5xx (other), timeouts, refused or lost connections, and
  answers that are not HTTP or end early (connection); `Retry-After` (seconds or an HTTP date) becomes
  the error's `retry_after`. Permanent (dead-lettered at once): 3xx and other 4xx, with the status and
  an excerpt of the answer.
- A circuit breaker per endpoint (host and path template): after `circuit breaker threshold` transient
  failures in a row it opens for `circuit breaker cool down`, and requests fail at once (transient,
  unavailable, `retry_after` the rest of the cool-down); then one probe request decides whether it
  closes again. :meth:`RestClient.breakers` reports each breaker's state for metrics.
- :class:`RestClient` is the same machinery for request/response calls (lookups, the REST intake):
  `call(method, path, body, headers) -> Response`, opened with :func:`open_client` from the same
  connection options.

Options (on the connection, except the last three, which are per step)
    base url                            the http(s) address paths are appended to (required)
    auth bearer                         a token sent as `Authorization: Bearer ...` (a secret)
    auth basic user, password           HTTP basic auth (the password a secret)
    auth api key, api key header        an API key (a secret) in `X-Api-Key` or the header named
    auth oauth2 token url, client id, client password, scope, credentials in
                                        OAuth2 client credentials; the client secret is `client
                                        password` (RFC 6749's other name for it) because `secret` is
                                        the keyword of `secret "NAME"`
    timeout, connect timeout, read timeout      default 30s, 5s, 30s
    max connections, keep alive                 the pool, default 10 and 15s
    max response size                           bytes of an answer read at most, default 1 MiB
    circuit breaker threshold, cool down        default 5 failures in a row, 30s (threshold 0: off)
    post / put / patch / get / delete           the path template; exactly one per sink
    header "Name" = expression                  a request header; repeatable
    content type                                default: that of the sink's format

Error codes: RST001 connection failed or lost before an answer; RST002 timeout; RST003 an answer that
is not HTTP or ends early; RST004 circuit open; RST010 a bad base url or path; RST011 a body or header
value that cannot be sent; RST012 the OAuth2 token endpoint refused the client or gave no token;
RST300 a redirect; RST400/401/403/404/409/422 client errors; RST408/429/500/502/503/504 server-side
transient statuses.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import StrEnum
from http import HTTPStatus
from typing import Any, Self

import aiohttp
import anyio
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from crossdock import __version__
from crossdock.connectors.base import Capabilities, ConnectorContext, ConnectorSpec
from crossdock.dsl.diagnostics import DiagnosticBag, Span
from crossdock.dsl.options import OptionSpec, OptionType, ResolvedOptions, Role, Scope
from crossdock.engine.clock import Clock
from crossdock.engine.errors import CrossdockError, PermanentError, TransientError, TransientKind
from crossdock.engine.mapping.expressions import is_missing
from crossdock.engine.message import CORRELATION_HEADER, Message
from crossdock.engine.templates import is_template
from crossdock.formats.base import format_spec
from crossdock.ops.tracing import inject_context

log = logging.getLogger("crossdock.connectors.rest")

METHODS = ("post", "put", "patch", "get", "delete")
# Methods whose request carries the message as its body; get and delete name the resource in the path.
_WITH_BODY = frozenset({"post", "put", "patch"})
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
EXCERPT_BYTES = 500
_USER_AGENT = f"crossdock/{__version__}"

_SINK = frozenset({Role.SINK})
_CONNECTION = Scope.CONNECTION

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("base url", OptionType.STRING,
               "Where the API lives (http or https); each request's path is appended to it.",
               example='env "ERP_URL"', required=True, scope=_CONNECTION, roles=_SINK),
    OptionSpec("auth bearer", OptionType.STRING, "Send this token as `Authorization: Bearer ...`.",
               example='secret "ERP_TOKEN"', secret=True, scope=_CONNECTION, roles=_SINK),
    OptionSpec("auth basic user", OptionType.STRING, "HTTP basic auth: the user (with `auth basic password`).",
               example='"crossdock"', scope=_CONNECTION, roles=_SINK),
    OptionSpec("auth basic password", OptionType.STRING, "HTTP basic auth: the password.",
               example='secret "ERP_PASSWORD"', secret=True, scope=_CONNECTION, roles=_SINK),
    OptionSpec("auth api key", OptionType.STRING, "Send this API key in the `auth api key header` header.",
               example='secret "SHOP_API_KEY"', secret=True, scope=_CONNECTION, roles=_SINK),
    OptionSpec("auth api key header", OptionType.STRING, "The header that carries `auth api key`.",
               default="X-Api-Key", example='"X-Shop-Key"', scope=_CONNECTION, roles=_SINK),
    OptionSpec("auth oauth2 token url", OptionType.STRING,
               "OAuth2 client credentials: where to get tokens (with `auth oauth2 client id` and "
               "`auth oauth2 client password`). A token is reused until shortly before it expires, and "
               "fetched again once when the API answers 401.",
               example='"https://login.example.com/oauth2/token"', scope=_CONNECTION, roles=_SINK),
    OptionSpec("auth oauth2 client id", OptionType.STRING, "OAuth2: the client id.",
               example='"crossdock"', scope=_CONNECTION, roles=_SINK),
    OptionSpec("auth oauth2 client password", OptionType.STRING,
               "OAuth2: the client secret (RFC 6749 calls it the client password).",
               example='secret "ERP_CLIENT_SECRET"', secret=True, scope=_CONNECTION, roles=_SINK),
    OptionSpec("auth oauth2 scope", OptionType.STRING, "OAuth2: the scope to ask for, if the server wants one.",
               example='"orders.write"', scope=_CONNECTION, roles=_SINK),
    OptionSpec("auth oauth2 credentials in", OptionType.CHOICE,
               "OAuth2: how the client id and secret reach the token endpoint: a basic auth `header` "
               "(RFC 6749's default) or form fields in the `body` (some servers only take these).",
               default="header", example="body", scope=_CONNECTION, roles=_SINK, choices=("header", "body")),
    OptionSpec("timeout", OptionType.DURATION,
               "The longest one request may take, from connecting to the last byte of the answer.",
               default=30.0, example="10s", scope=_CONNECTION, roles=_SINK),
    OptionSpec("connect timeout", OptionType.DURATION, "The longest connecting to the API may take.",
               default=5.0, example="2s", scope=_CONNECTION, roles=_SINK),
    OptionSpec("read timeout", OptionType.DURATION,
               "The longest the API may stay silent while crossdock waits for (more of) its answer.",
               default=30.0, example="20s", scope=_CONNECTION, roles=_SINK),
    OptionSpec("max connections", OptionType.INTEGER,
               "How many connections the sink's pool keeps open to the API at most.",
               default=10, example="32", scope=_CONNECTION, roles=_SINK),
    OptionSpec("keep alive", OptionType.DURATION, "How long an idle pooled connection is kept for reuse.",
               default=15.0, example="1m", scope=_CONNECTION, roles=_SINK),
    OptionSpec("max response size", OptionType.INTEGER,
               "How many bytes of an answer are read at most; a longer answer is cut there.",
               default=1_048_576, example="65536", scope=_CONNECTION, roles=_SINK),
    OptionSpec("circuit breaker threshold", OptionType.INTEGER,
               "After this many transient failures in a row on one endpoint, stop calling it for the "
               "cool-down and fail fast instead (0: never).",
               default=5, example="10", scope=_CONNECTION, roles=_SINK),
    OptionSpec("circuit breaker cool down", OptionType.DURATION,
               "How long an open circuit fails fast before one probe request is let through.",
               default=30.0, example="1m", scope=_CONNECTION, roles=_SINK),
    *(OptionSpec(method, OptionType.TEMPLATE,
                 f"Send each message as an HTTP {method.upper()} to this path under `base url`, a template "
                 f"(`{{{{ po_number }}}}` is filled in from the message)"
                 + ("." if method in _WITH_BODY else "; no body is sent.") + " Exactly one of "
                 + ", ".join(f"`{m}`" for m in METHODS) + " per sink.",
                 example='"/api/v2/orders"' if method in _WITH_BODY else '"/api/v2/orders/{{ po_number }}"',
                 scope=Scope.STEP, roles=_SINK)
      for method in METHODS),
    OptionSpec("header", OptionType.HEADER,
               "A request header, its value an expression over the message; may be repeated. "
               "`Idempotency-Key` defaults to the message's idempotency key; `X-Correlation-ID` is always "
               "sent.",
               example='"Idempotency-Key" = po_number', scope=Scope.STEP, roles=_SINK, repeatable=True),
    OptionSpec("content type", OptionType.STRING,
               "The request's Content-Type (default: that of the sink's format).",
               example='"application/vnd.erp.order+json"', scope=Scope.STEP, roles=_SINK),
)

# The options each kind of auth needs; a connection uses one kind at most.
_AUTH_KINDS: dict[str, tuple[str, ...]] = {
    "bearer": ("auth_bearer",),
    "basic": ("auth_basic_user", "auth_basic_password"),
    "api key": ("auth_api_key",),
    "oauth2": ("auth_oauth2_token_url", "auth_oauth2_client_id", "auth_oauth2_client_password"),
}


def check_options(options: ResolvedOptions, role: Role, span: Span, bag: DiagnosticBag) -> None:
    """Lint rules the option schema cannot say: one request line per sink, one complete kind of auth."""
    if role is Role.SINK:
        lines = sorted((m for m in METHODS if m in options.values), key=lambda m: _line_of(options, m))
        if not lines:
            bag.error("OPT006", "rest sink needs a request line: one of " + ", ".join(METHODS) + " with a path",
                      span, 'add a line such as: post "/api/v2/orders"')
        for extra in lines[1:]:
            bag.error("OPT005", f"rest sink has two request lines ('{lines[0]}' and '{extra}')",
                      options.span(extra) or span,
                      f"keep one: each message is sent with one method; the first is at line "
                      f"{_line_of(options, lines[0])}")
    used = [kind for kind, keys in _AUTH_KINDS.items() if any(k in options.values for k in keys)]
    for kind in used[1:]:
        first = next(k for k in _AUTH_KINDS[kind] if k in options.values)
        bag.error("OPT005", f"the connection sets two kinds of auth ({used[0]} and {kind})",
                  options.span(first) or span, "keep one `auth ...` kind per connection")
    for kind in used:
        present = [k for k in _AUTH_KINDS[kind] if k in options.values]
        for key in _AUTH_KINDS[kind]:
            if key not in options.values:
                name, example = next((s.name, s.example) for s in OPTIONS if s.key == key)
                bag.error("OPT006", f"auth {kind} also needs '{name}'", options.span(present[0]) or span,
                          f"add a line to the connection: {name} {example}")


def _line_of(options: ResolvedOptions, key: str) -> int:
    found = options.span(key)
    return found.line if found is not None else 0


SPEC = ConnectorSpec(
    kind="rest",
    description="Requests to a REST API over HTTP(S): each message is one request; 2xx means delivered.",
    roles=_SINK,
    options=OPTIONS,
    connection="required",
    capabilities=Capabilities(supports_confirm=True),
    check=check_options,
)


def _option(options: Mapping[str, Any], key: str) -> Any:
    """The option's value, or its declared default when the runtime left it out."""
    if key in options:
        return options[key]
    return next(spec.default for spec in OPTIONS if spec.key == key)


# ---- answers and their classification -----------------------------------------------------------

# Statuses worth retrying, with why; any other 5xx is transient too (kind other).
_TRANSIENT_STATUSES: dict[int, tuple[TransientKind, str]] = {
    408: (TransientKind.TIMEOUT, "RST408"),
    429: (TransientKind.THROTTLED, "RST429"),
    502: (TransientKind.UNAVAILABLE, "RST502"),
    503: (TransientKind.UNAVAILABLE, "RST503"),
    504: (TransientKind.TIMEOUT, "RST504"),
}
# Client errors with a code of their own, because they call for different fixes.
_PERMANENT_STATUSES = {401: "RST401", 403: "RST403", 404: "RST404", 409: "RST409", 422: "RST422"}


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds, or an HTTP date taken from `now`.

    None when the header is missing or unreadable; a date in the past is 0.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT; `-0000` parses without a zone
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def excerpt(body: bytes, truncated: bool = False) -> str:
    """The start of an answer as one line of text, for error messages and dead letters."""
    text = " ".join(body[:EXCERPT_BYTES].decode("utf-8", errors="replace").split())
    return text + ("…" if truncated or len(body) > EXCERPT_BYTES else "")


@dataclass(frozen=True, slots=True)
class Response:
    """An answer from the API: status, headers and (at most `max response size` bytes of) body.

    `truncated` says the body was cut at that limit; `retry_after` is the parsed `Retry-After`.
    """

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    method: str
    url: str
    truncated: bool = False
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        """Whether this status is worth trying again (and counts against the endpoint's breaker)."""
        return self.status in _TRANSIENT_STATUSES or not 200 <= self.status < 500

    def error(self) -> CrossdockError | None:
        """The classified error this answer means for a delivery, or None for 2xx."""
        if self.ok:
            return None
        reason = _reason(self.status)
        text = excerpt(self.body, self.truncated)
        details: dict[str, Any] = {"status": self.status, "method": self.method, "url": self.url, "body": text}
        message = f"{self.method} {self.url} answered {self.status}{reason}" + (f": {text}" if text else "")
        if self.status in _TRANSIENT_STATUSES:
            kind, code = _TRANSIENT_STATUSES[self.status]
            return TransientError(message, kind=kind, retry_after=self.retry_after, code=code, details=details)
        if 500 <= self.status < 600:
            return TransientError(message, kind=TransientKind.OTHER, retry_after=self.retry_after, code="RST500",
                                  details=details)
        if 300 <= self.status < 400:
            location = self.headers.get("Location", "")
            details["location"] = location
            return PermanentError(f"{self.method} {self.url} answered {self.status}{reason} (to {location or '?'}); "
                                  "redirects are not followed: set `base url` to the final address",
                                  code="RST300", details=details)
        if 400 <= self.status < 500:
            return PermanentError(message, code=_PERMANENT_STATUSES.get(self.status, "RST400"), details=details)
        return TransientError(f"{self.method} {self.url} answered with status {self.status}, which HTTP does not "
                              "have", kind=TransientKind.CONNECTION, code="RST003", details=details)

    def raise_for_status(self) -> None:
        """Raise :meth:`error` unless the answer is 2xx."""
        error = self.error()
        if error is not None:
            raise error


def _reason(status: int) -> str:
    try:
        return f" {HTTPStatus(status).phrase}"
    except ValueError:
        return ""


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body, and whether there was more (then the connection is dropped)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65_536):
        if size + len(chunk) > limit:
            chunks.append(chunk[: limit - size])
            response.close()  # the rest is never read; the connection cannot be reused
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _transport_error(error: BaseException, method: str, url: str, settings: ClientSettings) -> CrossdockError:
    """A classified error for what the HTTP library raised while sending `method url`.

    Only the exception's type and its own text are used: aiohttp's repr shows the request headers,
    which carry the credentials.
    """
    details = {"method": method, "url": url, "error": type(error).__name__}
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return TransientError(f"{method} {url}: could not connect within {settings.connect_timeout:g}s",
                              kind=TransientKind.TIMEOUT, code="RST002", details=details)
    if isinstance(error, aiohttp.SocketTimeoutError):
        return TransientError(f"{method} {url}: no answer for {settings.read_timeout:g}s (read timeout)",
                              kind=TransientKind.TIMEOUT, code="RST002", details=details)
    if isinstance(error, TimeoutError):
        return TransientError(f"{method} {url}: no complete answer within {settings.timeout:g}s (timeout)",
                              kind=TransientKind.TIMEOUT, code="RST002", details=details)
    if isinstance(error, aiohttp.ClientPayloadError):
        return TransientError(f"{method} {url}: the server closed the connection in the middle of its answer",
                              kind=TransientKind.CONNECTION, code="RST003", details=details)
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return TransientError(f"{method} {url}: the server closed the connection without answering",
                              kind=TransientKind.CONNECTION, code="RST001", details=details)
    if isinstance(error, aiohttp.ClientResponseError):
        # raised while parsing the answer (we never ask aiohttp to raise for a status)
        reason = " ".join(str(error.message).split())[:200]
        return TransientError(f"{method} {url}: the server's answer is not valid HTTP ({reason})",
                              kind=TransientKind.CONNECTION, code="RST003", details=details)
    if isinstance(error, aiohttp.InvalidURL):
        return PermanentError(f"{method} {url}: not a usable URL", code="RST010", details=details)
    reason = " ".join(str(error).split())[:200]
    return TransientError(f"{method} {url}: connection failed: {reason or type(error).__name__}",
                          kind=TransientKind.CONNECTION, code="RST001", details=details)


# ---- circuit breaker ----------------------------------------------------------------------------


class BreakerStatus(StrEnum):
    """Where a circuit breaker is: passing requests, failing fast, or letting one probe through."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class BreakerState:
    """A breaker's state for metrics: status, transient failures in a row, when it last opened (epoch)."""

    state: BreakerStatus
    failures: int
    opened_at: float | None


class CircuitBreaker:
    """One endpoint's breaker; see the module docstring. Time comes from the connector's clock."""

    def __init__(self, endpoint: str, threshold: int, cool_down: float, clock: Clock) -> None:
        self.endpoint = endpoint
        self.threshold = threshold
        self.cool_down = cool_down
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None  # wall time, for metrics
        self._opened_mono: float | None = None  # monotonic time, for the cool-down
        self._probing = False

    def _remaining(self) -> float:
        if self._opened_mono is None:
            return 0.0
        return self._opened_mono + self.cool_down - self._clock.monotonic()

    @property
    def state(self) -> BreakerState:
        if self._opened_mono is None:
            status = BreakerStatus.CLOSED
        else:
            status = BreakerStatus.OPEN if self._remaining() > 0 else BreakerStatus.HALF_OPEN
        return BreakerState(status, self._failures, self._opened_at)

    def enter(self) -> bool:
        """Admit a request; True when it is the half-open probe. Raises RST004 while the circuit is open."""
        if self._opened_mono is None:
            return False
        remaining = self._remaining()
        if remaining > 0:
            raise TransientError(
                f"{self.endpoint}: circuit open after {self._failures} failures in a row; not calling it for "
                f"another {remaining:.0f}s", kind=TransientKind.UNAVAILABLE, retry_after=remaining, code="RST004",
                details={"endpoint": self.endpoint, "failures": self._failures})
        if self._probing:
            raise TransientError(f"{self.endpoint}: circuit half-open, a probe request is under way",
                                 kind=TransientKind.UNAVAILABLE, code="RST004",
                                 details={"endpoint": self.endpoint, "failures": self._failures})
        self._probing = True
        return True

    def succeeded(self) -> None:
        """The endpoint answered (with anything but a transient status): close the circuit."""
        if self._opened_mono is not None:
            log.info("rest: circuit for %s closed again", self.endpoint)
        self._failures = 0
        self._opened_at = self._opened_mono = None
        self._probing = False

    def failed(self) -> None:
        """A transient failure: count it, and open (again) at the threshold."""
        self._failures += 1
        self._probing = False
        if self.threshold > 0 and self._failures >= self.threshold:
            if self._opened_mono is None:
                log.warning("rest: circuit for %s opened after %d failures in a row", self.endpoint, self._failures)
            self._opened_at = self._clock.now()
            self._opened_mono = self._clock.monotonic()

    def abandoned(self, probe: bool) -> None:
        """The request ended without an answer that says anything about the endpoint (cancelled...)."""
        if probe:
            self._probing = False


# ---- auth ---------------------------------------------------------------------------------------


@dataclass
class OAuth2ClientCredentials:
    """OAuth2 client-credentials grant with a token cached until shortly before it expires."""

    token_url: str
    client_id: str
    client_password: str = field(repr=False)
    scope: str | None
    credentials_in: str
    clock: Clock = field(repr=False)
    _token: str | None = field(default=None, init=False, repr=False)
    _expires: float = field(default=0.0, init=False, repr=False)
    _lock: anyio.Lock = field(default_factory=anyio.Lock, init=False, repr=False)

    # A token is renewed this long before it expires (at most a tenth of its lifetime), so a request
    # never leaves with a token that runs out on the way.
    MARGIN = 60.0

    async def token(self, client: RestClient) -> str | CrossdockError:
        """A valid access token, fetched when none is cached; a classified error if that fails."""
        async with self._lock:
            if self._token is not None and self.clock.monotonic() < self._expires:
                return self._token
            fetched = await self._fetch(client)
            if isinstance(fetched, CrossdockError):
                return fetched
            token, lifetime = fetched
            self._token = token
            self._expires = (self.clock.monotonic() + lifetime - min(self.MARGIN, lifetime / 10)
                             if lifetime is not None else math.inf)
            return token

    def invalidate(self, token: str) -> None:
        """The API refused `token`: forget it, unless another request already replaced it."""
        if self._token == token:
            self._token = None

    async def _fetch(self, client: RestClient) -> tuple[str, float | None] | CrossdockError:
        form = {"grant_type": "client_credentials", **({"scope": self.scope} if self.scope else {})}
        headers = {"Accept": "application/json"}
        if self.credentials_in == "body":
            form.update(client_id=self.client_id, client_secret=self.client_password)
        else:
            headers["Authorization"] = _basic(self.client_id, self.client_password)
        answer = await client.exchange("POST", URL(self.token_url), form, headers)
        if isinstance(answer, CrossdockError):
            return answer
        where = f"OAuth2 token endpoint {answer.url}"
        if answer.transient:
            return answer.error()
        try:
            data = _json_object(answer.body) if not answer.truncated else None
        except ValueError:
            data = None
        if not answer.ok:
            # Only the standard error fields are quoted: nothing else of a token answer goes into errors.
            problem = " ".join(str(data.get(k)) for k in ("error", "error_description") if data and data.get(k))
            return PermanentError(f"{where} refused the client: {answer.status}{_reason(answer.status)}"
                                  + (f" ({problem})" if problem else ""), code="RST012",
                                  details={"status": answer.status, "url": answer.url})
        token = data.get("access_token") if data else None
        if not isinstance(token, str) or not token:
            return PermanentError(f"{where} answered {answer.status} without an access_token in a JSON object",
                                  code="RST012", details={"status": answer.status, "url": answer.url})
        lifetime = data.get("expires_in") if data else None
        log.debug("rest: OAuth2 token fetched from %s for client %s", answer.url, self.client_id)
        return token, float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else None


def _json_object(body: bytes) -> dict[str, Any] | None:
    value = json.loads(body)
    return value if isinstance(value, dict) else None


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _static_auth(options: Mapping[str, Any]) -> dict[str, str]:
    """The auth header for bearer, basic and API key auth (empty for none or OAuth2)."""
    if options.get("auth_bearer"):
        return {"Authorization": f"Bearer {options['auth_bearer']}"}
    if options.get("auth_basic_user") is not None:
        return {"Authorization": _basic(str(options["auth_basic_user"]), str(options.get("auth_basic_password", "")))}
    if options.get("auth_api_key"):
        return {str(_option(options, "auth_api_key_header")): str(options["auth_api_key"])}
    return {}


# ---- the client ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSettings:
    """The connection options of a REST client, resolved."""

    base_url: str
    timeout: float
    connect_timeout: float
    read_timeout: float
    max_connections: int
    keep_alive: float
    max_response_bytes: int
    breaker_threshold: int
    breaker_cool_down: float
    static_auth: dict[str, str] = field(repr=False)
    oauth2: OAuth2ClientCredentials | None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], clock: Clock) -> ClientSettings:
        base = str(options.get("base_url") or "")
        parsed = URL(base) if base else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise PermanentError(f"rest: base url {base!r} is not an http(s) address", code="RST010")
        oauth2 = None
        if options.get("auth_oauth2_token_url"):
            oauth2 = OAuth2ClientCredentials(
                str(options["auth_oauth2_token_url"]), str(options.get("auth_oauth2_client_id", "")),
                str(options.get("auth_oauth2_client_password", "")), options.get("auth_oauth2_scope"),
                str(_option(options, "auth_oauth2_credentials_in")), clock)
        return cls(
            base_url=base.rstrip("/"),
            timeout=float(_option(options, "timeout")),
            connect_timeout=float(_option(options, "connect_timeout")),
            read_timeout=float(_option(options, "read_timeout")),
            max_connections=int(_option(options, "max_connections")),
            keep_alive=float(_option(options, "keep_alive")),
            max_response_bytes=int(_option(options, "max_response_size")),
            breaker_threshold=int(_option(options, "circuit_breaker_threshold")),
            breaker_cool_down=float(_option(options, "circuit_breaker_cool_down")),
            static_auth=_static_auth(options),
            oauth2=oauth2,
        )


class RestClient:
    """Requests to one API with the connection's pool, auth, timeouts and circuit breakers.

    Use as `async with RestClient(settings, clock) as client:`; see :meth:`call`.
    """

    def __init__(self, settings: ClientSettings, clock: Clock) -> None:
        self.settings = settings
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._breakers: dict[str, CircuitBreaker] = {}
        self._authority = URL(settings.base_url).authority
        self._base_path = URL(settings.base_url).path.rstrip("/")

    async def __aenter__(self) -> Self:
        s = self.settings
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=s.max_connections, keepalive_timeout=s.keep_alive),
            timeout=aiohttp.ClientTimeout(total=s.timeout, sock_connect=s.connect_timeout, sock_read=s.read_timeout),
            headers={"User-Agent": _USER_AGENT},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url(self, path: str) -> URL:
        """`path` under the base url (`https://erp/api` + `/v2/orders`); refuses absolute URLs (RST010)."""
        if "://" in path.split("?", 1)[0] or path.startswith("//"):
            raise PermanentError(f"rest: {path!r} is not a path under the base url", code="RST010",
                                 details={"path": path})
        try:
            return URL(f"{self.settings.base_url}/{path.lstrip('/')}" if path else self.settings.base_url)
        except ValueError:
            raise PermanentError(f"rest: {path!r} does not make a usable URL", code="RST010",
                                 details={"path": path}) from None

    def endpoint(self, path: str) -> str:
        """The breaker's name for `path`: host and path without the query (`erp:8080/api/v2/orders`)."""
        return f"{self._authority}{self._base_path}/{path.split('?', 1)[0].lstrip('/')}"

    def breakers(self) -> dict[str, BreakerState]:
        """Each endpoint's circuit breaker state, for metrics."""
        return {name: breaker.state for name, breaker in self._breakers.items()}

    def _breaker(self, endpoint: str) -> CircuitBreaker:
        breaker = self._breakers.get(endpoint)
        if breaker is None:
            s = self.settings
            breaker = self._breakers[endpoint] = CircuitBreaker(endpoint, s.breaker_threshold, s.breaker_cool_down,
                                                                self._clock)
        return breaker

    async def call(self, method: str, path: str, body: bytes | None = None,
                   headers: Mapping[str, str] | None = None, *, endpoint: str | None = None) -> Response:
        """Send one request and return the API's answer, whatever its status.

        Raises TransientError when no usable answer came (connection, timeout, not HTTP, circuit open)
        and PermanentError for a bad path or refused OAuth2 credentials; classify the answer itself with
        :meth:`Response.error`. `endpoint` names the circuit breaker (default: host and path); callers
        whose paths carry ids pass the template instead, so that all of them share one breaker.
        """
        method = method.upper()
        url = self.url(path)
        breaker = self._breaker(endpoint or self.endpoint(path))
        probe = breaker.enter()
        outcome: Response | CrossdockError | None = None
        try:
            outcome = await self._authorized(method, url, body, headers)
        finally:
            if outcome is None:
                breaker.abandoned(probe)
        if isinstance(outcome, Response):
            if outcome.transient:
                breaker.failed()
            else:
                breaker.succeeded()
            return outcome
        if isinstance(outcome, TransientError):
            breaker.failed()
        else:
            breaker.abandoned(probe)  # a refused token or bad URL says nothing about the endpoint
        # raised here, outside any `except`, so that no library exception (with its request headers)
        # rides along as the error's context into logs and dead letters
        raise outcome

    async def _authorized(self, method: str, url: URL, body: bytes | None,
                          headers: Mapping[str, str] | None) -> Response | CrossdockError:
        """The request with its auth; an OAuth2 token the API refuses (401) is replaced once."""
        answer, token = await self._with_auth(method, url, body, headers)
        oauth2 = self.settings.oauth2
        if oauth2 is not None and token is not None and isinstance(answer, Response) and answer.status == 401:
            oauth2.invalidate(token)  # revoked or keys rotated: a new token may well be taken
            answer, _ = await self._with_auth(method, url, body, headers)
        return answer

    async def _with_auth(self, method: str, url: URL, body: bytes | None,
                         headers: Mapping[str, str] | None) -> tuple[Response | CrossdockError, str | None]:
        """One request with the auth headers (they win over `headers`), and the OAuth2 token it used."""
        request = CIMultiDict(headers or {})
        token = None
        if self.settings.oauth2 is not None:
            fetched = await self.settings.oauth2.token(self)
            if isinstance(fetched, CrossdockError):
                return fetched, None
            token = fetched
            request["Authorization"] = f"Bearer {token}"
        request.update(self.settings.static_auth)
        return await self.exchange(method, url, body, request), token

    async def exchange(self, method: str, url: URL, body: Any, headers: Mapping[str, str]) -> Response | CrossdockError:
        """One request as is (no auth, no breaker): the answer, or the classified transport error."""
        if self._session is None:
            raise RuntimeError("RestClient used outside `async with`")
        shown = str(url.with_user(None).with_query(None))
        try:
            async with self._session.request(method, url, data=body, headers=headers,
                                             allow_redirects=False) as raw:
                content, truncated = await _read_bounded(raw, self.settings.max_response_bytes)
                return Response(raw.status, raw.headers, content, method, shown, truncated,
                                parse_retry_after(raw.headers.get("Retry-After"), self._clock.now()))
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return _transport_error(error, method, shown, self.settings)


# ---- the sink -----------------------------------------------------------------------------------


class RestSink:
    """Sends each message as one request; see the module docstring."""

    def __init__(self, client: RestClient, method: str, path: str, content_type: str) -> None:
        self.client = client
        self.method = method
        self.path = path
        self.content_type = content_type
        self._endpoint = client.endpoint(path)

    async def __aenter__(self) -> Self:
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.__aexit__(*exc)

    async def send(self, message: Message) -> None:
        """Send the message; returns once the API answered 2xx, raises the classified error otherwise."""
        response = await self.request(message)
        response.raise_for_status()

    async def request(self, message: Message) -> Response:
        """Send the message and return the answer whatever its status (a `call` step reads it)."""
        if not isinstance(message.body, bytes | bytearray):
            raise PermanentError(f"rest sink needs an encoded body (bytes), got {type(message.body).__name__}",
                                 code="RST011")
        # the runtime renders the path template into meta under the option's key; a dead-letter target
        # gets no rendering, so its path must be plain
        path = message.meta.get(self.method, self.path)
        if not isinstance(path, str) or is_template(path):
            raise PermanentError(f"rest sink: the path {self.path!r} was not rendered for this message "
                                 "(a dead-letter target takes a plain path)", code="RST010")
        with_body = self.method in _WITH_BODY
        return await self.client.call(self.method, path, bytes(message.body) if with_body else None,
                                      self.headers(message, with_body), endpoint=self._endpoint)

    def headers(self, message: Message, with_body: bool) -> CIMultiDict[str]:
        """The request headers: the step's header lines, Idempotency-Key, X-Correlation-ID, Content-Type,
        and the trace context of the current span (the delivery attempt's) when tracing."""
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in message.meta.get("headers", ()):
            headers[name] = _header_value(name, value)
        if message.idempotency_key and IDEMPOTENCY_HEADER not in headers:
            headers[IDEMPOTENCY_HEADER] = _header_value(IDEMPOTENCY_HEADER, message.idempotency_key)
        headers[CORRELATION_HEADER] = _header_value(CORRELATION_HEADER, message.correlation_id)
        if with_body:
            headers["Content-Type"] = str(message.meta.get("content_type") or self.content_type)
        inject_context(headers)
        return headers


def _header_value(name: str, value: Any) -> str:
    """A header value as text; a missing one, a structure or a line break is refused (RST011)."""
    if is_missing(value) or isinstance(value, dict | list | tuple):
        raise PermanentError(f"rest sink: header {name!r} has no usable value for this message", code="RST011",
                             details={"header": name})
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if "\r" in text or "\n" in text:
        raise PermanentError(f"rest sink: header {name!r} would contain a line break", code="RST011",
                             details={"header": name})
    return text


def open_client(options: Mapping[str, Any], context: ConnectorContext) -> RestClient:
    """A client for resolved connection `options` (keys as in :data:`OPTIONS`), for request/response calls."""
    return RestClient(ClientSettings.from_options(options, context.clock), context.clock)


def open_sink(options: Mapping[str, Any], context: ConnectorContext) -> RestSink:
    """A REST sink for resolved `options` (keys as in :data:`OPTIONS`, plus the sink's `format`)."""
    method = next((m for m in METHODS if options.get(m) is not None), None)
    if method is None:
        raise PermanentError("rest sink needs one of " + ", ".join(METHODS) + " with a path", code="RST010")
    fmt = options.get("format")
    content_type = options.get("content_type") or (format_spec(fmt).content_type if fmt else DEFAULT_CONTENT_TYPE)
    return RestSink(open_client(options, context), method, str(options[method]), str(content_type))
