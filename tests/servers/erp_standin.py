"""A small ERP stand-in for the REST connector's tests: a real HTTP server on 127.0.0.1.

It is the counterpart, not the thing under test. It runs aiohttp.web on its own event loop in a thread
(so a test's loop and the server never share one), records every request, and answers what the test
queued with :meth:`ErpStandIn.answer` (else 201): any status with headers and body, after a delay,
held until released, cut off in the middle, not HTTP at all, or huge. `POST /oauth2/token` is an OAuth2
client-credentials endpoint issuing `token-1`, `token-2`...; while :attr:`ErpStandIn.check_tokens` is
on, API requests without a currently valid token get 401, and :meth:`revoke_tokens` invalidates them.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import pytest
from aiohttp import web
from multidict import CIMultiDict

TOKEN_PATH = "/oauth2/token"
CLIENT_ID = "crossdock"
CLIENT_PASSWORD = "client-pass-9f2"

Mode = Literal["normal", "close-mid", "garbage", "hold"]


@dataclass
class Answer:
    """What the stand-in answers to one API request."""

    status: int = 201
    body: bytes = b'{"id": "ERP-1"}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    mode: Mode = "normal"


@dataclass(frozen=True)
class Recorded:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: str
    headers: CIMultiDict[str]
    body: bytes


class ErpStandIn:
    """The server; `start()` it once per test module, `reset()` it per test."""

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[Recorded] = []
        self.token_requests: list[Recorded] = []
        self.check_tokens = False
        self.token_lifetime: int | None = 3600
        self._answers: deque[Answer] = deque()
        self._token_answers: deque[Answer] = deque()
        self._valid_tokens: set[str] = set()
        self._issued = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- control, from the test's thread ----------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.token_requests.clear()
            self._answers.clear()
            self._token_answers.clear()
            self._valid_tokens.clear()
            self._issued = 0
            self.check_tokens = False
            self.token_lifetime = 3600
        self.release()

    def answer(self, *answers: Answer) -> None:
        """Queue answers for the next API requests, in order; after them every request gets 201."""
        with self._lock:
            self._answers.extend(answers)
        if any(a.mode == "hold" for a in answers) and self._loop is not None and self._release is not None:
            # cleared on the server's loop, in order with a later release()
            self._loop.call_soon_threadsafe(self._release.clear)

    def answer_token(self, *answers: Answer) -> None:
        """Queue answers for the next token requests instead of issuing tokens."""
        with self._lock:
            self._token_answers.extend(answers)

    def revoke_tokens(self) -> None:
        with self._lock:
            self._valid_tokens.clear()

    def release(self) -> None:
        """Let requests held by `Answer(mode="hold")` be answered (201)."""
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)

    # ---- lifetime -----------------------------------------------------------------------------------

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            runner = loop.run_until_complete(self._serve())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="erp-standin", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the ERP stand-in did not start")

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self.release()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _serve(self) -> web.AppRunner:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_post(TOKEN_PATH, self._token)
        app.router.add_route("*", "/{tail:.*}", self._api)
        # handler_cancellation: a client that gave up (timeout) ends the handler's wait too
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        return runner

    # ---- handlers, on the server's thread -----------------------------------------------------------

    async def _record(self, request: web.Request, into: list[Recorded]) -> None:
        body = await request.read()
        with self._lock:
            into.append(Recorded(request.method, request.path, request.query_string,
                                 CIMultiDict(request.headers), body))

    async def _api(self, request: web.Request) -> web.StreamResponse:
        await self._record(request, self.requests)
        with self._lock:
            answer = self._answers.popleft() if self._answers else Answer()
            refused = self.check_tokens and request.headers.get("Authorization", "").removeprefix(
                "Bearer ") not in self._valid_tokens
        if refused:
            return web.json_response({"error": "invalid_token"}, status=401)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.mode == "hold":
            assert self._release is not None
            await self._release.wait()
        transport = request.transport
        assert transport is not None
        if answer.mode == "garbage":
            transport.write(b"SURPRISE! this is not HTTP\r\n\r\n")
            transport.close()
            raise asyncio.CancelledError  # nothing more to write on a closed connection
        if answer.mode == "close-mid":
            response = web.StreamResponse(status=answer.status, headers={"Content-Length": "1000"})
            await response.prepare(request)
            await response.write(answer.body[:10])
            transport.close()
            raise asyncio.CancelledError
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers,
                            content_type=None if "Content-Type" in answer.headers else "application/json")

    async def _token(self, request: web.Request) -> web.StreamResponse:
        await self._record(request, self.token_requests)
        form = await request.post()
        with self._lock:
            scripted = self._token_answers.popleft() if self._token_answers else None
        if scripted is not None:
            return web.Response(status=scripted.status, body=scripted.body, headers=scripted.headers,
                                content_type="application/json")
        client = (form.get("client_id"), form.get("client_secret"))
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            client = (user, password)
        if form.get("grant_type") != "client_credentials" or client != (CLIENT_ID, CLIENT_PASSWORD):
            return web.json_response({"error": "invalid_client", "error_description": "unknown client"},
                                     status=401)
        with self._lock:
            self._issued += 1
            token = f"token-{self._issued}"
            self._valid_tokens.add(token)
            lifetime = self.token_lifetime
        body: dict[str, object] = {"access_token": token, "token_type": "Bearer"}
        if lifetime is not None:
            body["expires_in"] = lifetime
        return web.json_response(body)


@pytest.fixture(scope="module")
def erp_server() -> Iterator[ErpStandIn]:
    """An ERP stand-in on a free loopback port, one per test module."""
    server = ErpStandIn()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def erp(erp_server: ErpStandIn) -> ErpStandIn:
    """The module's ERP stand-in with its queued answers and recorded requests cleared for this test."""
    erp_server.reset()
    return erp_server


@pytest.fixture(scope="module")
def channel_servers() -> Iterator[tuple[ErpStandIn, ErpStandIn]]:
    """Two stand-ins per test module, for the sales channels: a web store and a marketplace API."""
    webstore, marketplace = ErpStandIn(), ErpStandIn()
    webstore.start()
    marketplace.start()
    yield webstore, marketplace
    webstore.stop()
    marketplace.stop()


@pytest.fixture
def channels(channel_servers: tuple[ErpStandIn, ErpStandIn]) -> tuple[ErpStandIn, ErpStandIn]:
    """The module's web store and marketplace stand-ins, both reset for this test."""
    for server in channel_servers:
        server.reset()
    return channel_servers
