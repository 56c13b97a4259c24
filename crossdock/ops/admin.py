"""The admin port: `/metrics`, `/health`, `/ready`, and the console mounted beside them.

`crossdock run --admin 127.0.0.1:9464` serves :class:`AdminApp` (Starlette) on uvicorn inside the
engine's own event loop, like the HTTP intake: one process, one loop, no thread.

- `GET /metrics`: the engine's registry in the Prometheus text format (OpenMetrics when the scraper
  asks for it in `Accept`); `?name[]=...` restricts it to those metrics. A name that is not a metric
  name is refused with 400, another method with 405, so no scrape request can make a 500.
- `GET /health`: 200 while the daemon answers (liveness), with each route's state.
- `GET /ready`: 200 once every route runs, 503 while starting, after a route failed, or stopping.
- :meth:`AdminApp.mount` puts another app under a path; the daemon mounts the web console
  (:func:`crossdock.ops.console.console_app`) at `/`.
- Reading is open; every other method (the console's POST actions) needs the admin credentials,
  HTTP basic auth checked by :class:`AdminCredentials`: user `admin` (or `--admin-user`), password
  from `CROSSDOCK_ADMIN_PASSWORD` (environment or `$CROSSDOCK_SECRETS_DIR/CROSSDOCK_ADMIN_PASSWORD`).
  Without a password every write is refused (403). Mounted apps reuse the same object
  (`credentials.user(request)`), so there is one notion of who the admin is.

Refusals are JSON `{"error": CODE, "message": ...}`: ADM400 a bad request (such as a metric name
that is not one), ADM401 credentials missing or wrong, ADM403 writes disabled, ADM404 nothing there,
ADM405 a method the path does not take, ADM500 a failure (logged); ADM001 at start: the address
cannot be listened on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import uvicorn
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from crossdock.connectors.http.settings import parse_listen
from crossdock.dsl.diagnostics import Span
from crossdock.dsl.options import Deferred
from crossdock.engine.errors import PermanentError
from crossdock.ops.logging import SECRETS
from crossdock.ops.tracing import tracing_from_env

if TYPE_CHECKING:
    from crossdock.engine.engine import Engine

log = logging.getLogger("crossdock.admin")

PASSWORD_SETTING = "CROSSDOCK_ADMIN_PASSWORD"
DEFAULT_ADMIN_USER = "admin"
GRACEFUL_SHUTDOWN_SECONDS = 5.0
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_VERSION_PARAMETER = re.compile(r"\bversion\s*=\s*([^;,\s]*)", re.IGNORECASE)
_VERSION = re.compile(r"\d+(\.\d+){0,2}")


def problem(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The admin port's refusal: `{"error": code, "message": message}` with `status`."""
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=dict(headers or {}))


# ---- credentials --------------------------------------------------------------------------------


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic ...` header; None when absent or malformed."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


@dataclass
class AdminCredentials:
    """Who may change things on the admin port: one user and password, HTTP basic auth.

    Satisfies the console's `AdminAuth` protocol (`realm`, `configured`, `user(request)`).
    """

    username: str = DEFAULT_ADMIN_USER
    password: str | None = None
    realm: str = "crossdock admin"

    def __repr__(self) -> str:
        return f"AdminCredentials(username={self.username!r}, configured={self.configured})"

    @classmethod
    def from_settings(cls, username: str = DEFAULT_ADMIN_USER, env: Mapping[str, str] | None = None,
                      ) -> AdminCredentials:
        """The password from `CROSSDOCK_ADMIN_PASSWORD`: a file of that name in `$CROSSDOCK_SECRETS_DIR`,
        else the environment variable (as `secret "CROSSDOCK_ADMIN_PASSWORD"` reads it); empty is none."""
        reference = Deferred("secret", PASSWORD_SETTING, Span("<crossdock run>", 0, 0))
        password = reference.resolve(env) or None
        SECRETS.add(password)
        return cls(username=username, password=password)

    @property
    def configured(self) -> bool:
        """False without a password: then nobody can log in and writes are refused."""
        return bool(self.password)

    def user(self, request: Request) -> str | None:
        """The admin's name when the request carries the right credentials, else None."""
        if not self.password:
            return None
        given = _basic_credentials(request.headers.get("authorization"))
        if given is None:
            return None
        # both compared in full, in constant time: neither length nor the first wrong byte is told
        user_ok = hmac.compare_digest(given[0].encode(), self.username.encode())
        password_ok = hmac.compare_digest(given[1].encode(), self.password.encode())
        return self.username if user_ok and password_ok else None

    def refusal(self, request: Request) -> Response | None:
        """None when the request may write; else the answer: 403 without a password, 401 to ask for one."""
        if not self.configured:
            return problem(403, "ADM403", f"write actions are disabled: no admin password is set "
                                          f"({PASSWORD_SETTING})")
        if self.user(request) is None:
            return problem(401, "ADM401", "write actions need the admin user and password (HTTP basic auth)",
                           {"WWW-Authenticate": f'Basic realm="{self.realm}", charset="UTF-8"'})
        return None


class _WritesNeedCredentials:
    """ASGI middleware: any method but GET, HEAD and OPTIONS needs the admin credentials, on every path
    (mounted apps included), before the app sees the request."""

    def __init__(self, app: ASGIApp, credentials: AdminCredentials) -> None:
        self.app = app
        self.credentials = credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in READ_METHODS:
            refusal = self.credentials.refusal(Request(scope))
            if refusal is not None:
                log.info("admin: %d %s %s refused", refusal.status_code, scope["method"], scope["path"])
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


# ---- the app ------------------------------------------------------------------------------------


class AdminApp:
    """The admin endpoints over a running engine; `app` is the ASGI app to serve."""

    def __init__(self, engine: Engine, credentials: AdminCredentials,
                 stopping: Callable[[], bool] = lambda: False) -> None:
        self.engine = engine
        self.credentials = credentials
        self._stopping = stopping
        self.starlette = Starlette(
            # every method matches here, and the endpoints refuse the wrong ones themselves: otherwise a
            # POST /metrics would fall through to an app mounted at / and get its 404, not a 405
            routes=[Route(path, _reads_only(endpoint), methods=_ANY_METHOD) for path, endpoint in
                    (("/metrics", self.metrics), ("/health", self.health), ("/ready", self.ready))],
            exception_handlers={HTTPException: self._http_error, Exception: self._internal_error},
        )
        self.app: ASGIApp = _WritesNeedCredentials(self.starlette, credentials)

    def mount(self, path: str, app: ASGIApp) -> None:
        """Serve `app` under `path` (`/` for the console). The admin's own paths keep priority."""
        self.starlette.router.routes.append(Mount(path.rstrip("/"), app=app))

    def route_states(self) -> dict[str, str]:
        """Each route's state: `running`, `failed`, `waiting` (for a server that is not up yet, trying
        again) or `not running` (starting, or stopped)."""
        running = self.engine.telemetry.metrics.running
        return {name: "failed" if runner.failure is not None else "waiting" if runner.waiting is not None
                else "running" if name in running else "not running"
                for name, runner in self.engine.runners.items()}

    async def metrics(self, request: Request) -> Response:
        """`GET /metrics`: the engine's registry, restricted to `name[]` when given, after reading the stores."""
        names = request.query_params.getlist("name[]")
        wrong = [name for name in names if not _METRIC_NAME.fullmatch(name)]
        if wrong:
            return problem(400, "ADM400", f"name[]={wrong[0]!r} is not a metric name")
        accept = request.headers.get("accept", "")
        versions = [v for v in _VERSION_PARAMETER.findall(accept) if not _VERSION.fullmatch(v)]
        if versions:  # the encoder would fail comparing it with its own versions
            return problem(400, "ADM400", f"Accept: version={versions[0]!r} is not a version number")
        encoder, content_type = choose_encoder(accept)
        metrics = self.engine.telemetry.metrics
        await metrics.refresh()
        registry: Any = metrics.registry.restricted_registry(names) if names else metrics.registry
        return Response(encoder(registry), headers={"Content-Type": content_type})

    async def health(self, request: Request) -> Response:
        """`GET /health`: 200 while the daemon answers, with each route's state."""
        return JSONResponse({"status": "ok", "routes": self.route_states()})

    async def ready(self, request: Request) -> Response:
        """`GET /ready`: 200 when every route runs and the daemon is not stopping, else 503."""
        states = self.route_states()
        if self._stopping():
            status = "stopping"
        elif all(state == "running" for state in states.values()):
            status = "ready"
        else:
            status = "not ready"
        return JSONResponse({"status": status, "routes": states}, status_code=200 if status == "ready" else 503)

    async def _http_error(self, request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if error.status_code == 404:
            return problem(404, "ADM404", f"nothing is served at {request.url.path}")
        if error.status_code == 405:
            return problem(405, "ADM405", f"{request.method} is not served at {request.url.path}",
                           error.headers)
        return problem(error.status_code, f"ADM{error.status_code}", str(error.detail), error.headers)

    async def _internal_error(self, request: Request, error: Exception) -> Response:
        log.error("admin: %s %s failed: %s: %s", request.method, request.url.path, type(error).__name__, error)
        return problem(500, "ADM500", "the admin endpoint failed; the daemon's log says why")


def _reads_only(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """`endpoint` for GET and HEAD; 405 (with Allow) for any other method."""

    async def guarded(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return problem(405, "ADM405", f"{request.method} is not served at {request.url.path}",
                           {"Allow": "GET, HEAD"})
        return await endpoint(request)

    return guarded


# ---- the server ---------------------------------------------------------------------------------


class _Uvicorn(uvicorn.Server):
    """uvicorn's server without its signal handlers: `crossdock run` owns SIGINT and SIGTERM."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serving(app: ASGIApp, listen: str) -> AsyncIterator[tuple[str, int]]:
    """Serve `app` on `listen` (host:port) in this event loop while the block runs; yields the bound
    (host, port), port 0 picking a free one. ADM001 when the address cannot be listened on."""
    try:
        host, port = parse_listen(listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family)
    except (PermanentError, OSError) as error:
        reason = error.message if isinstance(error, PermanentError) else (error.strerror or str(error))
        raise PermanentError(f"admin: cannot listen on {listen}: {reason}", code="ADM001") from error
    config = uvicorn.Config(app, ws="none", lifespan="off", access_log=False, log_config=None, log_level="warning",
                            server_header=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)
    server = _Uvicorn(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]), name=f"crossdock admin {listen}")
    bound = sock.getsockname()[:2]
    try:
        while not server.started:
            if task.done():
                raise PermanentError(f"admin: cannot serve on {listen}: {task.exception()}", code="ADM001")
            await anyio.sleep(0.005)
        log.info("admin: serving /metrics, /health and /ready on %s:%d", bound[0], bound[1])
        yield bound[0], bound[1]
    finally:
        server.should_exit = True
        with anyio.CancelScope(shield=True):
            try:
                await task
            except Exception as error:  # going away either way; say why it ended badly
                log.error("admin: the server on %s ended with an error: %s", listen, error)
        sock.close()


@asynccontextmanager
async def operations(engine: Engine, *, admin: str | None = None, admin_user: str = DEFAULT_ADMIN_USER,
                     stop: anyio.Event | None = None, env: Mapping[str, str] | None = None,
                     ) -> AsyncIterator[AdminApp | None]:
    """What `crossdock run` adds to an engine while it runs: traces when the OTEL_ variables ask for
    them, and with `admin` the admin port (metrics, health, readiness and the console)."""
    tracing = tracing_from_env(env)
    engine.telemetry.tracing = tracing
    try:
        if admin is None:
            yield None
            return
        app = AdminApp(engine, AdminCredentials.from_settings(admin_user, env),
                       stopping=stop.is_set if stop is not None else lambda: False)
        # The console's pages and templates load only when the admin port is served.
        from crossdock.ops.console import ConsoleContext, console_app

        console = ConsoleContext.of(engine, app.credentials)
        app.mount("/", console_app(console))
        async with serving(app.app, admin), anyio.create_task_group() as group:
            group.start_soon(console.sampler.run)  # a mounted app's lifespan does not run: its host runs it
            yield app
            group.cancel_scope.cancel()
    finally:
        engine.telemetry.tracing = None
        if tracing is not None:
            tracing.shutdown()
