"""The `http` connector: REST intake, an HTTP server inside the engine (source only).

Features
- One server per listen address, shared by every `from http` route of the engine: Starlette on
  uvicorn (httptools parser, access log off) running in the engine's own event loop. It starts when
  the first route using the address opens and stops when the last one closes.
- Intake (`post`, `put`, `patch`, `delete`; default mode `intake`): the request is authenticated,
  rate-limited, size-checked while it streams in, checked for its content type and for being well
  formed, stored durably in a SQLite inbox (`synchronous=FULL`, commits of concurrent requests
  grouped into one fsync) and only then answered `202 Accepted` with
  `{"correlation_id": ..., "status": "accepted"}`. The route receives the stored rows; a row is
  deleted when the route acknowledges it, so a crash between the 202 and the processing loses
  nothing: the rows are received again after a restart.
- Headers reach the route (credentials and this hop's framing dropped), a `traceparent` among them:
  with tracing on, the route's spans continue the caller's trace.
- `Idempotency-Key` on intake: the same key with the same request (method, path, query and body)
  within `idempotency window` gets the first answer again (status, body, correlation id, plus
  `Idempotent-Replayed: true`) and stores nothing; the same key with another request is refused
  with 422 (HTP024). Keys are scoped per endpoint and per API key.
- Request-reply (`get`; or `mode request reply`): the caller waits for the route's `reply` step, at
  most `answer timeout` (then 504, HTP032). A route that ends without replying answers for itself:
  dead-lettered -> 422 with the dead letter's error code (V001, M001...) and id; filtered (`keep only
  when`) -> 404 (HTP031); a duplicate, or delivered to sinks without a reply -> 204. Not durable:
  request-reply is for lookups. A request without a body (GET, DELETE) reaches the route as the JSON
  document `{"path": {path parameters}, "query": {query parameters}}`.
- Authentication: an API key in `api key header` checked against `api keys`; and/or an HMAC-SHA256
  signature of the body (see below). Rate limit: a token bucket per API key (per client address
  when the connection has no keys), `rate limit` requests per `rate limit window`; 429 with
  `Retry-After` when empty.
- `GET /health` (200 while the server runs), `GET /ready` (200 once every `from http` route of the
  engine is registered and receiving; 503 while starting or stopping) and `GET /openapi.json` (an
  OpenAPI 3.1 document of the routes on this address, with the request body schema when the route's
  first map reads `from json schema "file"` or the route validates a canonical model first).
- Every refusal is a JSON body `{"error": CODE, "message": ..., "correlation_id": ...}` with the
  `X-Correlation-ID` header, and is logged; malformed HTTP (bad request line, headers or
  Content-Length, garbage) is answered 400 the same way by the protocol layer.

The HMAC scheme
    The sender puts the current Unix time in seconds in `timestamp header` (default `X-Timestamp`)
    and `sha256=` + lowercase hex HMAC-SHA256(key = the secret's bytes, message = the timestamp's
    ASCII digits + "." + the raw request body) in `signature header` (default `X-Signature`). A
    timestamp more than `signature window` (default 5 minutes) away from crossdock's clock is
    refused (HTP014), which bounds how long a captured request can be replayed; an `Idempotency-Key`
    makes a replay inside the window harmless. :func:`crossdock.connectors.http.auth.sign` computes it.

Options (on the connection: listen and authentication; on the step: the method and mode; the rest either)
    listen              host:port to listen on (required); "[::1]:8080" for IPv6, ":8080" for every interface
    post, put, patch, get, delete
                        the endpoint's path, with {name} parameters; exactly one per route
    mode                `intake` or `request reply`, default by method (get: request reply)
    api key header      default X-Api-Key; api keys: the accepted keys (a secret)
    hmac key            the signing secret; signature header (X-Signature), timestamp header
                        (X-Timestamp), signature window (5m)
    max body            a size (`5 MB`, `512 KiB`, or bytes), default 1 MiB
    rate limit          requests per `rate limit window` (default 1m) per API key; unset: no limit
    idempotency window  how long an Idempotency-Key is remembered, default 1 day
    answer timeout      request-reply: how long the caller waits for the reply, default 5s
    body timeout        how long a body may take to arrive, default 30s
    inbox               the SQLite inbox file, default <data dir>/http-inbox.db
    check every         intake: how often the route looks in the inbox if no request woke it, default 1s

Error codes: HTP001 a bad http source configuration, HTP002 two routes on one method and path,
HTP003 the address cannot be listened on; HTP010-HTP050 are the answers to refused requests (see
docs/errors.md); HTP034 a reply that came too late (the caller was already answered).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crossdock.connectors.base import ConnectorContext, ConnectorSpec
from crossdock.dsl.diagnostics import DiagnosticBag, Span
from crossdock.dsl.options import OptionSpec, OptionType, ResolvedOptions, Role, Scope

if TYPE_CHECKING:
    from crossdock.connectors.http.source import HttpSource

_SOURCE = frozenset({Role.SOURCE})

METHODS = ("post", "put", "patch", "get", "delete")
INTAKE = "intake"
REQUEST_REPLY = "request reply"


def _method(name: str) -> OptionSpec:
    upper = name.upper()
    return OptionSpec(name, OptionType.STRING,
                      f"Serve {upper} requests on this path; `{{name}}` segments are path parameters "
                      f"(the route reads them as `message.path_name`). One method per route.",
                      example='"/v1/prices/{sku}"' if name == "get" else '"/v1/orders"',
                      scope=Scope.STEP, roles=_SOURCE)


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("listen", OptionType.STRING,
               "The address the HTTP server listens on, host:port; every route of the engine naming the "
               "same address shares one server.",
               example='"127.0.0.1:8080"', required=True, scope=Scope.CONNECTION, roles=_SOURCE),
    *(_method(name) for name in METHODS),
    OptionSpec("mode", OptionType.WORDS,
               "`intake`: store the request durably and answer 202 Accepted (the default for post, put, "
               "patch and delete); `request reply`: keep the caller waiting for the route's `reply` (the "
               "default for get, which cannot be intake).",
               example="request reply", choices=(INTAKE, REQUEST_REPLY), scope=Scope.STEP, roles=_SOURCE),
    OptionSpec("api key header", OptionType.STRING, "The request header that carries the API key.",
               default="X-Api-Key", example='"X-Api-Key"', scope=Scope.CONNECTION, roles=_SOURCE),
    OptionSpec("api keys", OptionType.STRING,
               "The accepted API keys, separated by commas or new lines (a secrets file may hold one per "
               "line). Without it, requests need no API key.",
               example='secret "CHANNEL_API_KEYS"', secret=True, scope=Scope.CONNECTION, roles=_SOURCE),
    OptionSpec("hmac key", OptionType.STRING,
               "When set, every request must carry an HMAC (SHA-256) signature of `timestamp + \".\" + body` "
               "made with this secret (see the http connector's section for the exact scheme).",
               example='secret "WEBHOOK_SECRET"', secret=True, scope=Scope.CONNECTION, roles=_SOURCE),
    OptionSpec("signature header", OptionType.STRING, "The header carrying `sha256=<hex HMAC>`.",
               default="X-Signature", example='"X-Hub-Signature-256"', scope=Scope.CONNECTION, roles=_SOURCE),
    OptionSpec("timestamp header", OptionType.STRING, "The header carrying the Unix time the request was signed.",
               default="X-Timestamp", example='"X-Webhook-Timestamp"', scope=Scope.CONNECTION, roles=_SOURCE),
    OptionSpec("signature window", OptionType.DURATION,
               "How far a signed request's timestamp may be from crossdock's clock (either way); older "
               "requests are refused as possible replays.",
               default=300.0, example="2m", scope=Scope.CONNECTION, roles=_SOURCE),
    OptionSpec("max body", OptionType.SIZE,
               "The largest request body accepted; a larger one is refused with 413 as soon as its size is "
               "known, without reading it all.",
               default=1_048_576, example="5 MB", roles=_SOURCE),
    OptionSpec("rate limit", OptionType.INTEGER,
               "How many requests one API key (or one client address, without keys) may make per "
               "`rate limit window`; more are refused with 429 and Retry-After. No limit when unset.",
               example="100", roles=_SOURCE),
    OptionSpec("rate limit window", OptionType.DURATION, "The period `rate limit` counts over.",
               default=60.0, example="1s", roles=_SOURCE),
    OptionSpec("idempotency window", OptionType.DURATION,
               "How long an `Idempotency-Key` is remembered with its answer.",
               default=86_400.0, example="7 days", roles=_SOURCE),
    OptionSpec("answer timeout", OptionType.DURATION,
               "Request-reply: how long the caller waits for the route's reply before a 504.",
               default=5.0, example="2s", roles=_SOURCE),
    OptionSpec("body timeout", OptionType.DURATION,
               "How long a request body may take to arrive before the request is refused with 408.",
               default=30.0, example="10s", roles=_SOURCE),
    OptionSpec("inbox", OptionType.STRING,
               "The SQLite file where accepted requests wait for their route (default: http-inbox.db in "
               "the data folder).",
               example='"inbox/http.db"', roles=_SOURCE),
    OptionSpec("check every", OptionType.DURATION,
               "Intake: how often the route looks in the inbox when no request woke it (a fallback).",
               default=1.0, example="5s", roles=_SOURCE),
)


def check_options(options: ResolvedOptions, role: Role, span: Span, bag: DiagnosticBag) -> None:
    """Lint rules the option schema cannot say: one method and path per route, a path and a listen
    address the server can serve, no `get` as intake. The runtime checks the same (HTP001)."""
    # Imported here: the settings module is light, but lint of routes without http never needs it.
    from crossdock.connectors.http.settings import HttpSettingError, check_path, parse_listen

    def line_of(key: str) -> int:
        found = options.span(key)
        return found.line if found is not None else 0

    methods = sorted((m for m in METHODS if m in options.values), key=line_of)
    if not methods:
        bag.error("OPT006", "http source needs a method and path: one of " + ", ".join(METHODS), span,
                  'add it to the from line: from http "api" post "/v1/orders"')
    for extra in methods[1:]:
        bag.error("OPT005", f"http source serves one method ('{methods[0]}' and '{extra}')",
                  options.span(extra) or span, "write one route per method and path")
    for method in methods:
        path = options.get(method)
        if isinstance(path, str):
            try:
                check_path(path)
            except HttpSettingError as error:
                bag.error("OPT002", f"'{method}' {error.message}", options.span(method) or span)
    if "get" in methods and options.get("mode") == INTAKE:
        bag.error("OPT002", "'mode' cannot be intake for get: GET requests are lookups and are not stored",
                  options.span("mode") or span, "use post or put for intake, or leave mode out")
    for key, name in (("max_body", "max body"), ("rate_limit", "rate limit")):
        value = options.get(key)
        if isinstance(value, int) and value < 1:
            bag.error("OPT002", f"'{name}' must be at least 1", options.span(key) or span)
    listen = options.get("listen")
    if isinstance(listen, str):
        try:
            parse_listen(listen)
        except HttpSettingError as error:
            bag.error("OPT002", f"'listen' {error.message}", options.span("listen") or span)


SPEC = ConnectorSpec(
    kind="http",
    description="REST intake: an HTTP server inside the engine. Intake requests are stored durably and "
                "answered 202 Accepted; request-reply requests (GET) wait for the route's `reply`.",
    roles=_SOURCE,
    options=OPTIONS,
    connection="required",
    check=check_options,
)


def open_source(options: Mapping[str, Any], context: ConnectorContext) -> HttpSource:
    """An http source for resolved `options` (keys as in :data:`OPTIONS`); HTP001 when they do not fit."""
    # Imported here so that lint, which only reads SPEC, never loads Starlette and uvicorn.
    from crossdock.connectors.http.settings import settings_from
    from crossdock.connectors.http.source import HttpSource

    return HttpSource(settings_from(options, context), context)
