"""The HTTP servers of one engine: one Starlette app on uvicorn per listen address, and their registry.

The registry (:class:`HttpHub`) lives in the engine's `ConnectorContext.shared`, so every `from http`
route of an engine finds the same servers and two engines in one process (tests) never meet. A
server starts when the first route naming its address opens and stops when the last one closes.

uvicorn runs inside the engine's event loop: `uvicorn.Server.serve()` as an asyncio task (uvicorn is
asyncio-only; the engine runs on asyncio, on uvloop under `crossdock run`). The socket is bound here
first, so a busy address is a route error (HTP003) instead of uvicorn's `sys.exit`. Signals stay
with `crossdock run`: uvicorn's own SIGINT/SIGTERM handlers are not installed. Access logging is off
(it halves throughput); refusals are logged by the endpoints with their code and correlation id.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from crossdock.connectors.base import SWAPPING_KEY
from crossdock.connectors.http import openapi
from crossdock.connectors.http.inbox import Inbox
from crossdock.connectors.http.problems import (
    correlation_id_of,
    error_body,
    json_response,
    log,
    problem_response,
)
from crossdock.engine.errors import PermanentError

if TYPE_CHECKING:
    from crossdock.connectors.http.source import HttpSource

HUB_KEY = "crossdock.connectors.http"
PLAN_KEY = "plan"
"""Where the engine shares its Plan: /openapi.json describes its routes, /ready counts them."""
DEAD_LETTERS_KEY = "dead_letters"
"""Where the engine shares its dead-letter store: a dead-lettered request-reply call is answered with
its entry's code and id."""

GRACEFUL_SHUTDOWN_SECONDS = 5.0
RESTART_GRACE_SECONDS = 30.0
"""How long an unregistered endpoint answers 503 (try again) before 404: longer than a reload takes."""
BACKLOG = 2048


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering unparseable requests with the JSON error shape."""

    def send_400_response(self, msg: str) -> None:
        correlation_id = uuid.uuid4().hex
        body = error_body("HTP022", "the request is not valid HTTP/1.1 (request line, headers, Content-Length "
                                    "or chunked encoding)", correlation_id)
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body),
                 b"x-correlation-id: " + correlation_id.encode() + b"\r\n", b"connection: close\r\n\r\n", body]
        self.transport.write(b"".join(head))
        self.transport.close()
        log.info("http %s: 400 HTP022 malformed HTTP from %s", correlation_id, _address(self.client))


def _address(client: Any) -> str:
    return f"{client[0]}:{client[1]}" if isinstance(client, tuple) else "unknown client"


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, except where it would reach outside its task."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # `crossdock run` owns SIGINT/SIGTERM and drains the routes, which then stop this server.
        yield


class HttpServer:
    """One listen address: the app, its uvicorn server and the endpoints registered on it."""

    def __init__(self, listen: str, host: str, port: int, hub: HttpHub) -> None:
        self.listen = listen
        self.host = host
        self.port = port
        self.hub = hub
        self.endpoints: dict[tuple[str, str], HttpSource] = {}
        self._routes: dict[tuple[str, str], Route] = {}
        # endpoints unregistered lately, with when: a reload stops a route before its new version
        # registers, and a caller asking in between must be told to retry, not that nothing is there
        self._left: dict[tuple[str, str], tuple[Route, float]] = {}
        self.app = Starlette(
            routes=[
                Route("/health", self._health, methods=["GET"]),
                Route("/ready", self._ready, methods=["GET"]),
                Route("/openapi.json", self._openapi, methods=["GET"]),
            ],
            exception_handlers={HTTPException: self._http_exception, Exception: self._internal_error},
        )
        self._server: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self.stopping = False

    # ---- lifetime -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the address and start serving; HTP003 when the address cannot be listened on."""
        try:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.create_server((self.host, self.port), family=family, backlog=BACKLOG)
        except OSError as error:
            raise PermanentError(f"cannot listen on {self.listen}: {error.strerror or error}", code="HTP003",
                                 details={"listen": self.listen}) from error
        config = uvicorn.Config(
            self.app, http=_Protocol, ws="none", lifespan="off", interface="asgi3", access_log=False,
            log_config=None, log_level="warning", server_header=False, backlog=BACKLOG,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
        server = self._server = _Uvicorn(config)
        self._task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]),
                                                            name=f"crossdock http {self.listen}")
        try:
            while not server.started:
                if self._task.done():
                    sock.close()
                    error = self._task.exception() or RuntimeError("uvicorn stopped while starting")
                    raise PermanentError(f"cannot serve on {self.listen}: {error}", code="HTP003") from error
                await anyio.sleep(0.005)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.stop()
            raise
        log.info("http: listening on %s", self.listen)

    async def stop(self) -> None:
        """Stop accepting, let answers in progress finish (up to a few seconds), close the socket."""
        self.stopping = True
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with anyio.CancelScope(shield=True):
            try:
                await self._task
            except Exception as error:  # the server is going away either way; say why it ended badly
                log.error("http: the server on %s ended with an error: %s", self.listen, error)
        self._server = self._task = None
        log.info("http: stopped listening on %s", self.listen)

    # ---- endpoints ------------------------------------------------------------------------------

    def register(self, source: HttpSource) -> None:
        """Serve `source`'s method and path; HTP002 when another route serves them already."""
        settings = source.settings
        key = (settings.method, settings.path)
        taken = self.endpoints.get(key)
        if taken is not None:
            raise PermanentError(f"{settings.endpoint} on {self.listen} is served by route '{taken.settings.route}' "
                                 f"already", code="HTP002")
        route = Route(settings.path, source.handle, methods=[settings.method])
        self._left.pop(key, None)
        self.endpoints[key] = source
        self._routes[key] = route
        self.app.router.routes.append(route)

    def unregister(self, source: HttpSource) -> None:
        """Stop serving `source`'s endpoint: 503 with Retry-After for RESTART_GRACE_SECONDS (a reload
        starts the route again meanwhile), then 404."""
        key = (source.settings.method, source.settings.path)
        if self.endpoints.get(key) is source:
            del self.endpoints[key]
            route = self._routes.pop(key)
            self.app.router.routes.remove(route)
            self._left[key] = (route, time.monotonic())

    def _restarting(self, request: Request) -> bool:
        """Whether the request is for an endpoint unregistered less than RESTART_GRACE_SECONDS ago."""
        now = time.monotonic()
        for key, (route, left_at) in list(self._left.items()):
            if now - left_at > RESTART_GRACE_SECONDS:
                del self._left[key]
            elif route.matches(request.scope)[0] is Match.FULL:
                return True
        return False

    # ---- the server's own answers ---------------------------------------------------------------

    async def _health(self, request: Request) -> Response:
        return json_response({"status": "ok"}, 200)

    async def _ready(self, request: Request) -> Response:
        state = self.hub.readiness()
        return json_response(state, 200 if state["status"] == "ready" else 503)

    async def _openapi(self, request: Request) -> Response:
        plan = self.hub.shared.get(PLAN_KEY)
        routes = plan.routes if plan is not None else {}
        document = openapi.build([source.settings for source in self.endpoints.values()], routes)
        return json_response(document, 200)

    async def _http_exception(self, request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        correlation_id = correlation_id_of(request.headers)
        if error.status_code == 404 and self._restarting(request):
            log.info("http %s: 503 HTP033 %s %s: its route is restarting", correlation_id, request.method,
                     request.url.path)
            return problem_response(503, "HTP033", "the route serving this path is restarting; try again shortly",
                                    correlation_id, {"Retry-After": "1"})
        if error.status_code == 404:
            code, message = "HTP040", f"nothing is served at {request.url.path}"
        elif error.status_code == 405:
            code, message = "HTP041", f"{request.method} is not served at {request.url.path}"
        else:
            code, message = "HTP022", str(error.detail)
        log.info("http %s: %d %s %s %s", correlation_id, error.status_code, code, request.method, request.url.path)
        return problem_response(error.status_code, code, message, correlation_id, error.headers)

    async def _internal_error(self, request: Request, error: Exception) -> Response:
        correlation_id = correlation_id_of(request.headers)
        log.error("http %s: 500 HTP050 %s %s: %r", correlation_id, request.method, request.url.path, error)
        return problem_response(500, "HTP050", "the server failed to handle the request", correlation_id)


class HttpHub:
    """The HTTP servers and inboxes of one engine, opened on first use and closed after last use."""

    def __init__(self, shared: dict[str, Any]) -> None:
        self.shared = shared
        self.servers: dict[str, HttpServer] = {}
        self.inboxes: dict[Path, Inbox] = {}
        self._users: dict[object, int] = {}
        self._lock = anyio.Lock()

    @classmethod
    def of(cls, shared: dict[str, Any]) -> HttpHub:
        """The engine's hub, created on first use."""
        hub = shared.get(HUB_KEY)
        if hub is None:
            hub = shared[HUB_KEY] = cls(shared)
        return hub

    async def server(self, listen: str, host: str, port: int) -> HttpServer:
        """The server of `listen`, started if this is its first user; pair with :meth:`release_server`."""
        async with self._lock:
            server = self.servers.get(listen)
            if server is None:
                server = HttpServer(listen, host, port, self)
                await server.start()
                self.servers[listen] = server
            self._users[server] = self._users.get(server, 0) + 1
            return server

    async def release_server(self, server: HttpServer) -> None:
        """One user fewer; the last one stops the server, unless a reload is swapping routes: then it
        stays up (its paths answering 503, try again) for the new version, until :meth:`settle`."""
        async with self._lock:
            if self._forget(server):
                if self.shared.get(SWAPPING_KEY):
                    return
                del self.servers[server.listen]
                await server.stop()

    async def settle(self) -> None:
        """After a reload: stop the servers it left without a route."""
        async with self._lock:
            for listen, server in list(self.servers.items()):
                if server not in self._users:
                    del self.servers[listen]
                    await server.stop()

    async def inbox(self, path: Path) -> Inbox:
        """The inbox in `path`, opened if this is its first user; pair with :meth:`release_inbox`."""
        async with self._lock:
            inbox = self.inboxes.get(path)
            if inbox is None:
                inbox = Inbox(path)
                await inbox.open()
                self.inboxes[path] = inbox
                waiting = await inbox.depths()
                if waiting:  # from before a restart, or for an endpoint no route serves any more
                    log.info("http: the inbox %s holds accepted requests not yet delivered: %s", path,
                             ", ".join(f"{endpoint}: {count}" for endpoint, count in waiting.items()))
            self._users[inbox] = self._users.get(inbox, 0) + 1
            return inbox

    async def release_inbox(self, inbox: Inbox) -> None:
        """One user fewer; the last one closes the file."""
        async with self._lock:
            if self._forget(inbox):
                del self.inboxes[inbox.path]
                await inbox.close()

    def _forget(self, resource: object) -> bool:
        left = self._users[resource] - 1
        if left:
            self._users[resource] = left
            return False
        del self._users[resource]
        return True

    def sources(self) -> Iterator[HttpSource]:
        """Every endpoint registered on any server of the engine."""
        for server in self.servers.values():
            yield from server.endpoints.values()

    def readiness(self) -> dict[str, Any]:
        """`ready` once every http route of the engine's plan is registered and receiving; else
        `starting` (some are not there yet) or `stopping` (a server or a route is going away)."""
        plan = self.shared.get(PLAN_KEY)
        sources = list(self.sources())
        expected = len(sources) if plan is None else sum(1 for r in plan.routes.values() if r.source.kind == "http")
        receiving = sum(1 for source in sources if source.receiving)
        if any(server.stopping for server in self.servers.values()) \
                or any(source.closing or (source.started and not source.receiving) for source in sources):
            status = "stopping"
        elif receiving < expected or receiving < len(sources):
            status = "starting"
        else:
            status = "ready"
        return {"status": status, "routes": {"receiving": receiving, "expected": expected}}
