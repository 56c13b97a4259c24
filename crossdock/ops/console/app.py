"""The console as a Starlette app: `console_app(context)`, served by the daemon on its admin port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crossdock.ops.console.context import ConsoleContext
from crossdock.ops.console.params import ConsoleError
from crossdock.ops.console.views import SECURITY_HEADERS, Console

log = logging.getLogger("crossdock.console")


def console_app(context: ConsoleContext) -> Starlette:
    """The console's pages, static files and error pages over `context`.

    Served on its own, its lifespan samples the route counters for the rate charts; mounted in
    another app, the host runs `context.sampler.run()` (see :class:`ConsoleContext`).
    """
    console = Console(context)

    async def console_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ConsoleError)
        return console.error_page(request, error)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        titles = {404: "Not found", 405: "Method not allowed"}
        message = "the console has no such page" if error.status_code == 404 else str(error.detail)
        return console.error_page(request, ConsoleError(error.status_code, titles.get(error.status_code, "Error"),
                                                        message, dict(error.headers or {})))

    async def internal_error(request: Request, error: Exception) -> Response:
        log.exception("console: %s %s failed", request.method, request.url.path, exc_info=error)
        return console.error_page(request, ConsoleError(500, "Internal error",
                                                        "the console failed on this page; the daemon's log says why"))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            group.start_soon(context.sampler.run)
            yield
            group.cancel_scope.cancel()

    return Starlette(
        routes=[
            Route("/", console.routes, methods=["GET"], name="routes"),
            Route("/dead-letters", console.dead_letters, methods=["GET"], name="dead_letters"),
            Route("/dead-letters/replay", console.replay, methods=["POST"], name="replay"),
            Route("/dead-letters/purge", console.purge, methods=["POST"], name="purge"),
            Route("/dead-letters/{entry_id}", console.dead_letter, methods=["GET"], name="dead_letter"),
            Route("/lineage", console.lineage, methods=["GET"], name="lineage"),
            Route("/login", console.login, methods=["GET"], name="login"),
            Mount("/static", StaticFiles(packages=[("crossdock.ops.console", "static")]), name="static"),
        ],
        exception_handlers={ConsoleError: console_error, HTTPException: http_error, Exception: internal_error},
        middleware=[Middleware(SecurityHeaders)],
        lifespan=lifespan,
    )


class SecurityHeaders:
    """Adds :data:`~crossdock.ops.console.views.SECURITY_HEADERS` to every answer, static files included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
                         if name.encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
