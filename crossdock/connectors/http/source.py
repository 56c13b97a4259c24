"""An http source: one endpoint (method + path) of a server, answering callers and feeding its route.

Intake requests are stored in the inbox and answered 202; `receive()` yields the stored rows and
`ack()` deletes them. Request-reply callers wait in memory; `receive()` yields them with a `reply`
function that completes their answer. See the package docstring for the promises made to callers.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from functools import partial
from typing import Any, Self

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response

from crossdock.connectors.base import ConnectorContext
from crossdock.connectors.http.body import check_well_formed, content_kind, read_body
from crossdock.connectors.http.inbox import IdempotencyClaim, Inbox, InboxRow, IntakeRequest, KeyConflict, Stored
from crossdock.connectors.http.problems import JSON, HttpProblem, correlation_id_of, log, problem_response
from crossdock.connectors.http.ratelimit import TokenBucketLimiter
from crossdock.connectors.http.server import DEAD_LETTERS_KEY, HttpHub, HttpServer
from crossdock.connectors.http.settings import EndpointSettings
from crossdock.engine.errors import CrossdockError, PermanentError
from crossdock.engine.message import CORRELATION_HEADER, Inbound, Outcome, derived_id

ROWS_PER_READ = 100
MAX_WAITING_CALLS = 1000
"""Request-reply callers queued for a route that has not taken them yet; more are answered 503 at
once instead of piling up until their timeouts."""
DEAD_LETTER_LOOKBACK = 100
"""How many of the newest dead letters are searched for the one a request-reply call became (it was
stored just before the acknowledgment that asks for it)."""

# Request headers that never reach the route, the inbox or the dead-letter store: credentials, and the
# framing of this hop.
_DROPPED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "content-length", "connection",
                              "transfer-encoding", "keep-alive", "expect", CORRELATION_HEADER.lower()})
_IDEMPOTENCY_HEADER = "idempotency-key"


class _Call:
    """A request-reply caller waiting for its answer; the first answer wins."""

    def __init__(self, correlation_id: str) -> None:
        self.correlation_id = correlation_id
        self.response: Response | None = None
        self.answered = anyio.Event()
        self.taken = False  # the route has it
        self.gave_up = False  # the caller was answered 504

    def answer(self, response: Response) -> None:
        if self.response is None and not self.gave_up:
            self.response = response
            self.answered.set()

    async def reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """The route's `reply` step."""
        if self.response is not None or self.gave_up:
            raise PermanentError("the caller was already answered (the reply came after the answer timeout, or "
                                 "twice)", code="HTP034")
        self.answer(Response(body, status_code=status, headers=headers))

    async def release(self) -> None:
        """The route stopped before finishing: the caller may try again."""
        self.answer(_stopping(self.correlation_id))


_STOPPING = "the route is stopping; try again shortly"
_RETRY_SOON = {"Retry-After": "1"}


def _stopping(correlation_id: str) -> Response:
    return problem_response(503, "HTP033", _STOPPING, correlation_id, _RETRY_SOON)


class HttpSource:
    """One endpoint; see the module docstring."""

    def __init__(self, settings: EndpointSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self._context = context
        self._clock = context.clock
        self._hub: HttpHub | None = None
        self._server: HttpServer | None = None
        self._inbox: Inbox | None = None
        self._limiter = TokenBucketLimiter(settings.rate_limit, settings.rate_window) if settings.rate_limit else None
        self._wake = anyio.Event()
        self._calls: deque[tuple[_Call, Inbound]] = deque()
        self._held: set[int] = set()
        self._cursor = 0
        self._rewind: int | None = None
        self.started = False  # receive() was called
        self.receiving = False  # receive() is running
        self.closing = False

    # ---- lifetime -------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        settings = self.settings
        self._hub = HttpHub.of(self._context.shared)
        try:
            if settings.intake:
                self._inbox = await self._hub.inbox(settings.inbox)
            self._server = await self._hub.server(settings.listen, settings.host, settings.port)
            self._server.register(self)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._release_resources()
            raise
        if settings.auth.open:
            log.warning("http: route %r serves %s on %s without authentication (no api keys, no hmac key)",
                        settings.route, settings.endpoint, settings.listen)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closing = True
        self._turn_away_waiting()
        with anyio.CancelScope(shield=True):
            await self._release_resources()

    async def _release_resources(self) -> None:
        assert self._hub is not None
        if self._server is not None:
            self._server.unregister(self)
            await self._hub.release_server(self._server)
            self._server = None
        if self._inbox is not None:
            waiting = await self._inbox.depth(self.settings.endpoint)
            if waiting:  # kept, never dropped: they were answered 202
                log.warning("http: route %r stops with %d accepted request(s) for %s in the inbox %s; a route "
                            "serving that endpoint takes them when it starts", self.settings.route, waiting,
                            self.settings.endpoint, self._inbox.path)
            await self._hub.release_inbox(self._inbox)
            self._inbox = None

    def _turn_away_waiting(self) -> None:
        """Answer 503 to request-reply callers the route will not take any more."""
        while self._calls:
            call, _ = self._calls.popleft()
            call.answer(_stopping(call.correlation_id))

    # ---- the route's side -----------------------------------------------------------------------

    async def receive(self, *, once: bool) -> AsyncIterator[Inbound]:
        """Intake: the stored requests, oldest first; request-reply: the waiting callers. With `once`,
        what is there now; otherwise wait for more (woken by each request, intake also polls)."""
        self.started = self.receiving = True
        intake = self.settings.intake
        try:
            while True:
                self._wake = anyio.Event()  # before looking: a request arriving after the look sets it
                found = False
                if intake:
                    for row in await self._fresh_rows():
                        found = True
                        self._held.add(row.seq)
                        yield self._row_inbound(row)
                else:
                    while self._calls:
                        found = True
                        call, inbound = self._calls.popleft()
                        call.taken = True
                        yield inbound
                if found:
                    continue
                if once:
                    return
                with anyio.move_on_after(self.settings.check_every if intake else math.inf):
                    await self._wake.wait()
        finally:
            self.receiving = False
            if not intake:
                self._turn_away_waiting()

    async def _fresh_rows(self) -> list[InboxRow]:
        """The next stored rows that the route does not hold already."""
        assert self._inbox is not None
        if self._rewind is not None:
            self._cursor, self._rewind = min(self._cursor, self._rewind), None
        while True:
            rows = await self._inbox.rows(self.settings.endpoint, after=self._cursor, limit=ROWS_PER_READ)
            if not rows:
                return []
            self._cursor = rows[-1].seq
            fresh = [row for row in rows if row.seq not in self._held]
            if fresh:
                return fresh

    def _row_inbound(self, row: InboxRow) -> Inbound:
        return Inbound(
            body=row.body,
            message_id=row.message_id,
            headers=dict(row.headers),
            meta=self._meta(row.method, row.path, row.path_params, row.query, row.received_at),
            ack=partial(self._ack_row, row.seq),
            release=partial(self._release_row, row.seq),
        )

    def _meta(self, method: str, path: str, params: Mapping[str, str], query: Mapping[str, Any],
              received_at: float) -> dict[str, Any]:
        # Path parameters also go in one by one as text, because maps and templates read text meta
        # values as `message.NAME`: `/v1/customers/{id}` gives `message.path_id`.
        return {"endpoint": self.settings.endpoint, "method": method, "path": path, "path_params": dict(params),
                "query": dict(query), "received_at": received_at,
                **{f"path_{name}": value for name, value in params.items()}}

    async def _ack_row(self, seq: int, outcome: Outcome) -> None:
        # Every outcome deletes: a dead-lettered request is in the dead-letter store already.
        assert self._inbox is not None
        try:
            await self._inbox.delete(seq)
        except BaseException:
            self._rewind_to(seq)  # still stored: offer it again rather than leave it until a restart
            raise
        finally:
            self._held.discard(seq)

    async def _release_row(self, seq: int) -> None:
        self._held.discard(seq)
        self._rewind_to(seq)

    def _rewind_to(self, seq: int) -> None:
        self._rewind = seq - 1 if self._rewind is None else min(self._rewind, seq - 1)
        self._wake.set()

    async def _settle(self, call: _Call, outcome: Outcome) -> None:
        """The route ended without replying (or after): answer for it by how the message ended."""
        if call.response is not None or call.gave_up:
            return
        if outcome is Outcome.DEAD_LETTERED:
            call.answer(await self._dead_letter_answer(call.correlation_id))
        elif outcome is Outcome.FILTERED:
            call.answer(problem_response(404, "HTP031", "the route has nothing to answer for this request",
                                         call.correlation_id))
        else:  # delivered to sinks without a reply, or a duplicate the route skipped
            call.answer(Response(status_code=204, headers={CORRELATION_HEADER: call.correlation_id}))

    async def _dead_letter_answer(self, correlation_id: str) -> Response:
        store = self._context.shared.get(DEAD_LETTERS_KEY)
        entry = None
        if store is not None:
            try:
                recent = await store.list(limit=DEAD_LETTER_LOOKBACK)
            except CrossdockError as error:
                log.error("http %s: cannot read the dead-letter store: %s %s", correlation_id, error.code, error)
            else:
                entry = next((e for e in recent if e.correlation_id == correlation_id), None)
        if entry is None:
            return problem_response(422, "HTP030", "the request could not be processed; it is in the dead-letter "
                                                   "store under its correlation id", correlation_id)
        extra: dict[str, Any] = {"dead_letter": entry.id}
        if entry.error.get("problems"):
            extra["problems"] = entry.error["problems"]
        return problem_response(422, entry.code or "HTP030", str(entry.error.get("message", "")), correlation_id,
                                extra=extra)

    # ---- the caller's side ----------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Answer one request to this endpoint; never raises."""
        headers = header_dict(request)
        correlation_id = correlation_id_of(headers)
        try:
            return await self._handle(request, headers, correlation_id)
        except HttpProblem as problem:
            log.info("http %s: %d %s %s %s: %s", correlation_id, problem.status, problem.code, request.method,
                     request.scope["path"], problem.message)
            return problem.response(correlation_id)
        except Exception as error:
            log.exception("http %s: 500 HTP050 %s %s", correlation_id, request.method, request.scope["path"])
            return problem_response(500, "HTP050", f"the server failed to handle the request "
                                                   f"({type(error).__name__})", correlation_id)

    async def _handle(self, request: Request, received: dict[str, str], correlation_id: str) -> Response:
        settings = self.settings
        if self.closing:
            raise HttpProblem(503, "HTP033", _STOPPING, headers=_RETRY_SOON)
        now = self._clock.now()
        client = settings.auth.client(received)
        if self._limiter is not None:
            wait = self._limiter.take(client or f"ip:{request.client.host if request.client else '?'}",
                                      self._clock.monotonic())
            if wait is not None:
                limit = f"more than {settings.rate_limit} requests in {settings.rate_window:g}s"
                raise HttpProblem(429, "HTP029", limit, headers={"Retry-After": str(math.ceil(wait))})
        raw = b""
        if settings.takes_body:
            kind = content_kind(received.get("content-type"))
            raw = await read_body(request, received.get("content-length"), settings.max_body, settings.body_timeout)
        settings.auth.verify_signature(received, raw, now)
        if settings.takes_body:
            check_well_formed(kind, raw)
        params = dict(request.path_params)
        query = _query(request)
        body = raw if settings.takes_body else orjson.dumps({"path": params, "query": query})
        headers = {k: v for k, v in received.items() if k not in _DROPPED_HEADERS
                   and k != settings.auth.key_header.lower() and k != settings.auth.signature_header.lower()}
        headers[CORRELATION_HEADER] = correlation_id
        if not settings.takes_body:
            headers["content-type"] = JSON
        if settings.intake:
            key = received.get(_IDEMPOTENCY_HEADER)
            return await self._accept(request, correlation_id, client or "", key, body, headers, params, query, now)
        return await self._call(request, correlation_id, body, headers, params, query, now)

    async def _accept(self, request: Request, correlation_id: str, client: str, key: str | None, body: bytes,
                      headers: dict[str, str], params: dict[str, str], query: dict[str, Any],
                      now: float) -> Response:
        assert self._inbox is not None
        settings = self.settings
        claim = None
        if key is not None:
            if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
                raise HttpProblem(400, "HTP023", "Idempotency-Key must be 1 to 255 printable ASCII characters")
            fingerprint = hashlib.sha256(b"\n".join([request.method.encode(), request.scope["path"].encode(),
                                                     request.scope["query_string"], body])).hexdigest()
            claim = IdempotencyClaim(client, key, fingerprint, settings.idempotency_window)
        stored = await self._store(IntakeRequest(
            endpoint=settings.endpoint,
            # a key's requests share one message id, so sinks that dedupe hold one copy even after the
            # key has been forgotten here
            message_id=derived_id("http", settings.endpoint, client, key) if key else uuid.uuid4().hex,
            correlation_id=correlation_id,
            method=request.method,
            path=request.scope["path"],
            path_params=params,
            query=query,
            headers=headers,
            body=body,
            received_at=now,
            status=202,
            response=orjson.dumps({"correlation_id": correlation_id, "status": "accepted"}),
            idempotency=claim,
        ))
        if isinstance(stored, KeyConflict):
            raise HttpProblem(422, "HTP024", f"Idempotency-Key '{key}' was used for another request (correlation id "
                                             f"{stored.correlation_id}); a new request needs a new key")
        answer_headers = {CORRELATION_HEADER: stored.correlation_id}
        if stored.replayed:
            answer_headers["Idempotent-Replayed"] = "true"
        else:
            self._wake.set()
        return Response(stored.response, status_code=stored.status, headers=answer_headers, media_type=JSON)

    async def _store(self, request: IntakeRequest) -> Stored | KeyConflict:
        assert self._inbox is not None
        try:
            return await self._inbox.store(request)
        except CrossdockError as error:
            log.error("http %s: cannot store the request: %s %s", request.correlation_id, error.code, error)
            raise HttpProblem(503, "HTP035", "the request could not be stored; try again shortly",
                              headers=_RETRY_SOON) from error

    async def _call(self, request: Request, correlation_id: str, body: bytes, headers: dict[str, str],
                    params: dict[str, str], query: dict[str, Any], now: float) -> Response:
        settings = self.settings
        if self.started and not self.receiving:
            raise HttpProblem(503, "HTP033", _STOPPING, headers=_RETRY_SOON)
        if len(self._calls) >= MAX_WAITING_CALLS:
            raise HttpProblem(503, "HTP033", "too many requests are waiting for this route; try again shortly",
                              headers=_RETRY_SOON)
        call = _Call(correlation_id)
        inbound = Inbound(body=body, message_id=uuid.uuid4().hex, headers=headers,
                          meta=self._meta(request.method, request.scope["path"], params, query, now),
                          ack=partial(self._settle, call), release=call.release, reply=call.reply)
        entry = (call, inbound)
        self._calls.append(entry)
        self._wake.set()
        with anyio.move_on_after(settings.answer_timeout):
            await call.answered.wait()
        if call.response is None:
            call.gave_up = True
            if not call.taken:
                self._calls.remove(entry)
            raise HttpProblem(504, "HTP032", f"the route did not reply within {settings.answer_timeout:g}s")
        return call.response


def header_dict(request: Request) -> dict[str, str]:
    """The request's headers by lowercase name (uvicorn lowercases them), decoded once: Starlette's
    `request.headers` decodes and scans the whole list on every lookup, and a request is looked up
    six or seven times. A repeated header keeps its first value, as `request.headers.get` would."""
    headers: dict[str, str] = {}
    for name, value in request.scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


def _query(request: Request) -> dict[str, Any]:
    """Query parameters; a name given several times keeps every value, in a list."""
    query: dict[str, Any] = {}
    for name, value in request.query_params.multi_items():
        if name in query:
            previous = query[name]
            query[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            query[name] = value
    return query
