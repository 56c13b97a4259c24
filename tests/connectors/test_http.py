"""The http connector over real HTTP on loopback: an Engine runs real routes, aiohttp (or a raw socket,
where the test needs broken HTTP) is the caller. Nothing is mocked; the `gate` sink holds messages so
the tests can look at the inbox while a request is in flight."""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import gate_connector
import pytest
from gate_connector import RECEIVED, WAITING, gate
from polling import eventually as eventually_within
from servers.ports import free_port

from crossdock.connectors import base as connectors
from crossdock.connectors.http import server as server_module
from crossdock.connectors.http.auth import sign
from crossdock.connectors.http.inbox import Inbox, InboxRow
from crossdock.dsl.lint import lint
from crossdock.engine.clock import Clock, ManualClock, SystemClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.runtime import Services
from crossdock.engine.stores.base import DeadLetter

pytestmark = pytest.mark.anyio

eventually = partial(eventually_within, within=10.0)

REPO = Path(__file__).resolve().parents[2]
KEYS = "key-one, key-two"
SECRET = "hook-secret"
ORDER = json.dumps({"po": "PO-1", "lines": [{"sku": "A-1", "qty": 2}]}).encode()

CONNECTION = """
connection "api" is http
  listen "127.0.0.1:PORT"
  api keys secret "API_KEYS"
  EXTRA
end
"""

INTAKE = """
route "Order intake"
  from http "api" post "/v1/orders"
  read json
  to gate name "erp"
  dead letter to store
end
"""

LOOKUPS = """
route "Price lookup"
  from http "api" get "/v1/prices/{sku}"
  read json
  keep only when path.sku != "NONE"
  map with "Price reply"
  reply 200
  dead letter to store
end

route "Strict lookup"
  from http "api" get "/v1/orders/{po}"
  read json
  validate as Order
  reply 200
  dead letter to store
end

route "Slow lookup"
  from http "api" get "/v1/slow"
    answer timeout 300ms
  to gate name "slow"
  reply 200
  dead letter to store
end

route "Quote"
  from http "api" post "/v1/quotes"
    mode request reply
  read json
  reply 201
  dead letter to store
end

map "Price reply"
  from json
  to json
  sku = path.sku
  currency = query.currency default "USD"
  price = "12.50"
end
"""


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """uvloop, as under `crossdock run`."""
    return "asyncio", {"use_uvloop": True}


@pytest.fixture(autouse=True)
def gates(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(connectors._REGISTRY, "gate", "gate_connector")
    gate_connector.reset()
    yield
    gate_connector.reset()




@dataclass
class Api:
    """A running engine and a client for its HTTP server."""

    engine: Engine
    port: int
    data: Path
    session: aiohttp.ClientSession
    stop: anyio.Event

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def request(self, method: str, path: str, body: bytes | None = None, *, key: str | None = "key-one",
                      content_type: str | None = "application/json",
                      headers: Mapping[str, str] | None = None) -> tuple[int, Mapping[str, str], Any]:
        sent = dict(headers or {})
        if key is not None:
            sent["X-Api-Key"] = key
        if content_type is not None and body is not None:
            sent["Content-Type"] = content_type
        async with self.session.request(method, self.url + path, data=body, headers=sent) as answer:
            raw = await answer.read()
            parsed = json.loads(raw) if raw and answer.content_type == "application/json" else raw
            return answer.status, answer.headers, parsed

    async def post(self, path: str, body: bytes, **kwargs: Any) -> tuple[int, Mapping[str, str], Any]:
        return await self.request("POST", path, body, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Mapping[str, str], Any]:
        return await self.request("GET", path, **kwargs)

    async def ready(self) -> tuple[int, Any]:
        status, _, body = await self.get("/ready", key=None)
        return status, body


def write_routes(tmp_path: Path, text: str, port: int, extra: str = "") -> Path:
    routes = tmp_path / "routes"
    routes.mkdir(exist_ok=True)
    (routes / "api.route").write_text(CONNECTION.replace("PORT", str(port)).replace("EXTRA", extra) + text)
    return routes


@asynccontextmanager
async def serving(tmp_path: Path, text: str, *, extra: str = "", clock: Clock | None = None,
                  port: int | None = None, drain_timeout: float = 2.0, wait_ready: bool = True,
                  ) -> AsyncIterator[Api]:
    """Lint the routes, start an Engine on them in daemon mode, wait for /ready; stop it afterwards."""
    port = port or free_port()
    routes = write_routes(tmp_path, text, port, extra)
    result = lint([routes])
    assert not result.errors, [str(d) for d in result.errors]
    assert result.plan is not None
    data = tmp_path / "data"
    async with embedded_stores(data) as stores, aiohttp.ClientSession() as session:
        services = Services(stores=stores, data_dir=data, clock=clock or SystemClock(), rng=random.Random(7),
                            env={"API_KEYS": KEYS, "HOOK_SECRET": SECRET})
        engine = Engine(result.plan, services)
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(partial(engine.run, once=False, stop=stop, drain_timeout=drain_timeout))
            api = Api(engine, port, data, session, stop)
            try:
                if wait_ready:
                    await eventually(lambda: _is_ready(api), "the server answers /ready with 200")
                yield api
            finally:
                stop.set()


async def _is_ready(api: Api) -> bool:
    try:
        return (await api.ready())[0] == 200
    except aiohttp.ClientConnectionError:
        return False


async def inbox_rows(data: Path) -> list[InboxRow]:
    """What the inbox file holds, read through a connection of its own (what is on disk)."""
    async with Inbox(data / "http-inbox.db") as inbox:
        return await inbox.rows("POST /v1/orders", after=0, limit=100)


async def dead_letters(data: Path) -> list[DeadLetter]:
    async with embedded_stores(data) as stores:
        return await stores.dead_letters.list(limit=100)


async def raw_exchange(port: int, request: bytes, *, close_after_send: bool = False) -> bytes:
    """Send bytes as they are and read the answer until the server closes or a whole response is in."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request)
        if close_after_send:
            await stream.send_eof()
        return await read_response(stream)


async def read_response(stream: anyio.abc.ByteStream) -> bytes:
    received = b""
    while True:
        head, _, body = received.partition(b"\r\n\r\n")
        if _:
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if length is not None and len(body) >= length:
                return received
        try:
            received += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return received


def parse_response(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


# ---- intake -------------------------------------------------------------------------------------


async def test_intake_answers_202_once_the_request_is_on_disk_and_the_route_then_delivers_it(tmp_path: Path) -> None:
    async with serving(tmp_path, INTAKE) as api:
        status, headers, body = await api.post("/v1/orders?channel=web", ORDER,
                                                headers={"X-Correlation-ID": "order-77"})
        assert status == 202
        assert body == {"correlation_id": "order-77", "status": "accepted"}
        assert headers["X-Correlation-ID"] == "order-77"
        # The gate holds the message, so the route cannot have acknowledged it: the row is what the
        # 202 promised, on disk, read here through a connection of its own.
        [row] = await inbox_rows(api.data)
        assert row.body == ORDER and row.correlation_id == "order-77"
        assert row.method == "POST" and row.path == "/v1/orders" and row.query == {"channel": "web"}
        assert "x-api-key" not in row.headers and row.headers["content-type"] == "application/json"
        await eventually(lambda: WAITING.get("erp") == 1, "the message reaches the sink")
        gate("erp").set()
        await eventually(lambda: len(RECEIVED.get("erp", [])) == 1, "the sink confirms")
        [message] = RECEIVED["erp"]
        assert message.correlation_id == "order-77"
        assert json.loads(message.body) == json.loads(ORDER)
        assert message.meta["method"] == "POST" and message.meta["endpoint"] == "POST /v1/orders"
        await eventually(lambda: _empty_inbox(api.data), "the acknowledged row is deleted")
    assert api.engine.stats.routes["Order intake"].delivered == 1


async def _empty_inbox(data: Path) -> bool:
    return await inbox_rows(data) == []


async def test_a_correlation_id_is_assigned_when_the_caller_sends_none_or_an_unusable_one(tmp_path: Path) -> None:
    async with serving(tmp_path, INTAKE) as api:
        _, headers, body = await api.post("/v1/orders", ORDER)
        _, odd_headers, odd = await api.post("/v1/orders", ORDER, headers={"X-Correlation-ID": "has spaces/slash"})
        gate("erp").set()
    assert len(body["correlation_id"]) == 32 and headers["X-Correlation-ID"] == body["correlation_id"]
    assert odd["correlation_id"] != "has spaces/slash" and odd_headers["X-Correlation-ID"] == odd["correlation_id"]


async def test_a_stopped_engine_keeps_accepted_requests_and_delivers_them_after_a_restart(tmp_path: Path) -> None:
    port = free_port()
    async with serving(tmp_path, INTAKE, port=port, drain_timeout=0.2) as api:
        status, _, accepted = await api.post("/v1/orders", ORDER)
        assert status == 202
        await eventually(lambda: WAITING.get("erp") == 1, "the message is in flight at the sink")
    # Stopped with the sink still holding the message: the route released it, nothing was delivered.
    assert RECEIVED.get("erp") is None
    assert [row.correlation_id for row in await inbox_rows(tmp_path / "data")] == [accepted["correlation_id"]]
    gate("erp").set()
    async with serving(tmp_path, INTAKE, port=port):
        await eventually(lambda: len(RECEIVED.get("erp", [])) == 1, "the stored request is delivered")
        await eventually(lambda: _empty_inbox(tmp_path / "data"), "and then deleted")
    [message] = RECEIVED["erp"]
    assert message.correlation_id == accepted["correlation_id"]


async def test_the_same_idempotency_key_and_body_gets_the_first_answer_and_stores_nothing(tmp_path: Path) -> None:
    async with serving(tmp_path, INTAKE) as api:
        first = await api.post("/v1/orders", ORDER, headers={"Idempotency-Key": "po-1"})
        again = await api.post("/v1/orders", ORDER, headers={"Idempotency-Key": "po-1"})
        assert first[0] == again[0] == 202
        assert again[2] == first[2]
        assert again[1]["X-Correlation-ID"] == first[1]["X-Correlation-ID"]
        assert again[1]["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first[1]
        assert len(await inbox_rows(api.data)) == 1
        other = await api.post("/v1/orders", ORDER.replace(b"PO-1", b"PO-2"), headers={"Idempotency-Key": "po-1"})
        assert other[0] == 422 and other[2]["error"] == "HTP024"
        assert first[2]["correlation_id"] in other[2]["message"]
        # A key is the caller's: another API key may use the same one for its own request.
        theirs = await api.post("/v1/orders", ORDER, key="key-two", headers={"Idempotency-Key": "po-1"})
        assert theirs[0] == 202 and "Idempotent-Replayed" not in theirs[1]
        bad = await api.post("/v1/orders", ORDER, headers={"Idempotency-Key": "x" * 300})
        assert bad[0] == 400 and bad[2]["error"] == "HTP023"
        assert len(await inbox_rows(api.data)) == 2
        gate("erp").set()
        await eventually(lambda: len(RECEIVED.get("erp", [])) == 2, "both stored requests are delivered")


async def test_idempotency_keys_are_forgotten_after_the_window(tmp_path: Path) -> None:
    clock = ManualClock(start=time.time())
    async with serving(tmp_path, INTAKE, extra="idempotency window 1m", clock=clock) as api:
        first = await api.post("/v1/orders", ORDER, headers={"Idempotency-Key": "po-1"})
        clock.advance(61)
        later = await api.post("/v1/orders", ORDER, headers={"Idempotency-Key": "po-1"})
        assert later[0] == 202 and "Idempotent-Replayed" not in later[1]
        assert later[2]["correlation_id"] != first[2]["correlation_id"]
        rows = await inbox_rows(api.data)
        # Stored again, but as the same message: a sink that dedupes keeps one copy.
        assert len(rows) == 2 and rows[0].message_id == rows[1].message_id
        gate("erp").set()


# ---- authentication and limits -------------------------------------------------------------------


async def test_api_keys_are_required_and_checked(tmp_path: Path) -> None:
    async with serving(tmp_path, INTAKE) as api:
        missing = await api.post("/v1/orders", ORDER, key=None)
        wrong = await api.post("/v1/orders", ORDER, key="key-three")
        second_key = await api.post("/v1/orders", ORDER, key="key-two")
        assert len(await inbox_rows(api.data)) == 1
        gate("erp").set()
    assert missing[0] == 401 and missing[2]["error"] == "HTP010"
    assert missing[1]["WWW-Authenticate"] == 'ApiKey header="X-Api-Key"'
    assert wrong[0] == 401 and wrong[2]["error"] == "HTP011"
    assert second_key[0] == 202
    assert missing[2]["correlation_id"] == missing[1]["X-Correlation-ID"]


async def test_hmac_signatures_are_checked_with_a_timestamp_window(tmp_path: Path) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    now = str(int(clock.now()))
    stale = str(int(clock.now()) - 301)

    def signed(timestamp: str, body: bytes, signature: str | None = None) -> dict[str, str]:
        return {"X-Timestamp": timestamp, "X-Signature": signature or sign(SECRET, timestamp, body)}

    extra = 'hmac key secret "HOOK_SECRET"'
    async with serving(tmp_path, INTAKE, extra=extra, clock=clock) as api:
        good = await api.post("/v1/orders", ORDER, headers=signed(now, ORDER))
        tampered = await api.post("/v1/orders", ORDER + b" ", headers=signed(now, ORDER))
        wrong_secret = await api.post("/v1/orders", ORDER, headers=signed(now, ORDER, sign("guess", now, ORDER)))
        old = await api.post("/v1/orders", ORDER, headers=signed(stale, ORDER))
        unsigned = await api.post("/v1/orders", ORDER)
        malformed = await api.post("/v1/orders", ORDER, headers=signed(now, ORDER, "md5=abc"))
        gate("erp").set()
    assert good[0] == 202
    assert (tampered[0], tampered[2]["error"]) == (401, "HTP013")
    assert (wrong_secret[0], wrong_secret[2]["error"]) == (401, "HTP013")
    assert (old[0], old[2]["error"]) == (401, "HTP014")
    assert (unsigned[0], unsigned[2]["error"]) == (401, "HTP012")
    assert (malformed[0], malformed[2]["error"]) == (401, "HTP012")


def test_the_signature_scheme_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"1800000000.{}", hashlib.sha256).hexdigest()
    assert sign("k", "1800000000", b"{}") == "sha256=" + expected


async def test_the_rate_limit_is_per_api_key_and_says_when_to_retry(tmp_path: Path) -> None:
    clock = ManualClock(start=time.time())
    async with serving(tmp_path, INTAKE, extra="rate limit 2", clock=clock) as api:
        answers = [await api.post("/v1/orders", ORDER) for _ in range(3)]
        other_key = await api.post("/v1/orders", ORDER, key="key-two")
        clock.advance(30)  # half a window refills one of the two requests
        refilled = await api.post("/v1/orders", ORDER)
        gate("erp").set()
    assert [a[0] for a in answers] == [202, 202, 429]
    limited = answers[2]
    assert limited[2]["error"] == "HTP029"
    assert limited[1]["Retry-After"] == "30"
    assert other_key[0] == 202
    assert refilled[0] == 202


async def test_a_body_over_the_limit_is_refused_by_its_declared_length(tmp_path: Path) -> None:
    async with serving(tmp_path, INTAKE, extra="max body 1024") as api:
        status, headers, body = await api.post("/v1/orders", b'{"x": "' + b"y" * 2000 + b'"}')
        fits = await api.post("/v1/orders", b'{"x": "' + b"y" * 1000 + b'"}')
        gate("erp").set()
    assert status == 413 and body["error"] == "HTP020" and "1024" in body["message"]
    assert headers["Connection"] == "close"
    assert fits[0] == 202


async def test_a_chunked_body_over_the_limit_is_refused_without_being_read(tmp_path: Path) -> None:
    """2 GB announced chunk by chunk: the server answers 413 once past its limit and closes; the client
    stops long before it sent everything."""
    total = 2 * 1024**3
    chunk = b"x" * 65536
    async with serving(tmp_path, INTAKE) as api:
        async with await anyio.connect_tcp("127.0.0.1", api.port) as stream:
            await stream.send(b"POST /v1/orders HTTP/1.1\r\nHost: test\r\nX-Api-Key: key-one\r\n"
                              b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            sent = 0
            async with anyio.create_task_group() as pumping:
                async def pump() -> None:
                    nonlocal sent
                    try:
                        while sent < total:
                            await stream.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                            sent += len(chunk)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                        return  # the server closed the connection: exactly what it should do

                pumping.start_soon(pump)
                raw = await read_response(stream)
                pumping.cancel_scope.cancel()
        status, headers, body = parse_response(raw)
        assert (await api.get("/health", key=None))[0] == 200
    assert status == 413 and body["error"] == "HTP020"
    assert headers["connection"] == "close"
    assert sent < 64 * 1024**2  # the default limit is 1 MiB; socket buffers account for the rest
    assert len(await inbox_rows(tmp_path / "data")) == 0


async def test_only_json_xml_and_x12_bodies_are_taken_and_they_must_be_well_formed(tmp_path: Path) -> None:
    async with serving(tmp_path, INTAKE) as api:
        text = await api.post("/v1/orders", b"hello", content_type="text/plain")
        untyped = await api.post("/v1/orders", ORDER, content_type=None)
        xml = await api.post("/v1/orders", b"<order><po>1</po></order>", content_type="application/xml")
        vendor_json = await api.post("/v1/orders", ORDER, content_type="application/vnd.acme+json; charset=utf-8")
        x12 = await api.post("/v1/orders", b"ISA*00*...~", content_type="application/EDI-X12")
        broken_json = await api.post("/v1/orders", b'{"po": "PO-1", "lines": [', content_type="application/json")
        broken_xml = await api.post("/v1/orders", b"<order><po></order>", content_type="text/xml")
        entity = await api.post("/v1/orders", b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
                                content_type="application/xml")
        not_x12 = await api.post("/v1/orders", b"UNB+UNOA", content_type="application/edi-x12")
        gate("erp").set()
    assert (text[0], text[2]["error"]) == (415, "HTP021")
    assert "text/plain" in text[2]["message"] and "application/json" in text[2]["message"]
    assert (untyped[0], untyped[2]["error"]) == (415, "HTP021")
    assert xml[0] == vendor_json[0] == x12[0] == 202
    assert (broken_json[0], broken_json[2]["error"]) == (400, "HTP025")
    assert "line 1" in broken_json[2]["message"]
    assert (broken_xml[0], broken_xml[2]["error"]) == (400, "HTP025")
    assert entity[0] == 202  # well formed; the entity is never resolved (the route decodes it safely)
    assert (not_x12[0], not_x12[2]["error"]) == (400, "HTP025")


# ---- broken HTTP --------------------------------------------------------------------------------


async def test_malformed_http_is_answered_400_in_json_and_the_server_goes_on(tmp_path: Path) -> None:
    async with serving(tmp_path, INTAKE) as api:
        garbage = parse_response(await raw_exchange(api.port, b"\x16\x03\x01 GARBAGE\r\n\r\n"))
        bad_length = parse_response(await raw_exchange(
            api.port, b"POST /v1/orders HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n{}"))
        bad_header = parse_response(await raw_exchange(
            api.port, b"POST /v1/orders HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n"))
        both_framings = parse_response(await raw_exchange(
            api.port, b"POST /v1/orders HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
        health = await api.get("/health", key=None)
    for status, headers, body in (garbage, bad_length, bad_header, both_framings):
        assert status == 400 and body["error"] == "HTP022"
        assert headers["content-type"] == "application/json"
        assert headers["x-correlation-id"] == body["correlation_id"]
    assert health[0] == 200


async def test_a_body_that_stops_short_is_answered_408_after_the_body_timeout(tmp_path: Path) -> None:
    async with serving(tmp_path, INTAKE, extra="body timeout 300ms") as api:
        raw = await raw_exchange(api.port, b"POST /v1/orders HTTP/1.1\r\nHost: t\r\nX-Api-Key: key-one\r\n"
                                           b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"po\":")
    status, headers, body = parse_response(raw)
    assert status == 408 and body["error"] == "HTP026" and headers["connection"] == "close"


async def test_a_client_that_goes_away_mid_body_is_logged_and_stores_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="crossdock.http")
    async with serving(tmp_path, INTAKE) as api:
        async with await anyio.connect_tcp("127.0.0.1", api.port) as stream:
            await stream.send(b"POST /v1/orders HTTP/1.1\r\nHost: t\r\nX-Api-Key: key-one\r\n"
                              b"X-Correlation-ID: gone-1\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 1000\r\n\r\n{\"po\":")
        await eventually(lambda: any("gone-1" in r.getMessage() for r in caplog.records), "the refusal is logged")
        assert (await api.get("/health", key=None))[0] == 200
    [record] = [r for r in caplog.records if "gone-1" in r.getMessage()]
    assert "HTP022" in record.getMessage() and "went away" in record.getMessage()
    assert await inbox_rows(tmp_path / "data") == []


async def test_a_path_whose_route_just_stopped_answers_503_retry_then_404(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(tmp_path, INTAKE + LOOKUPS) as api:
        # a reload without the intake route: its path goes away while the lookups keep being served
        (tmp_path / "next").mkdir()
        without = lint([write_routes(tmp_path / "next", LOOKUPS, api.port)]).plan
        assert without is not None
        await api.engine.apply(without)
        restarting = await api.post("/v1/orders", ORDER)
        lookup = await api.get("/v1/prices/NONE")
        monkeypatch.setattr(server_module, "RESTART_GRACE_SECONDS", 0.0)
        gone = await api.post("/v1/orders", ORDER)
    assert (restarting[0], restarting[2]["error"], restarting[1]["Retry-After"]) == (503, "HTP033", "1")
    assert "restarting" in restarting[2]["message"]
    assert lookup[0] == 404 and lookup[2]["error"] == "HTP031"  # the other routes were untouched
    assert (gone[0], gone[2]["error"]) == (404, "HTP040")


async def test_a_reload_of_the_only_route_on_a_port_keeps_the_port_open(tmp_path: Path) -> None:
    async with serving(tmp_path, INTAKE) as api:
        hub = server_module.HttpHub.of(api.engine.services.shared)
        [before] = hub.servers.values()
        answers: list[int] = []
        refused: list[Exception] = []
        swapped = anyio.Event()

        async def keep_posting() -> None:
            while not swapped.is_set():
                try:
                    answers.append((await api.post("/v1/orders", ORDER))[0])
                except aiohttp.ClientConnectionError as error:
                    refused.append(error)
                await anyio.sleep(0.005)

        async with anyio.create_task_group() as group:
            group.start_soon(keep_posting)
            await eventually(lambda: len(answers) >= 3, "a few orders went in before the reload")
            await api.engine.apply(api.engine.plan, changed=["Order intake"])
            await eventually(lambda: len(answers) >= 3 and answers[-1] == 202, "the new version takes orders")
            swapped.set()
        [after] = hub.servers.values()
    assert after is before  # the same server the whole time: the port never closed
    assert refused == []
    assert set(answers) <= {202, 503}  # 503 (try again) only while the route was swapped


RETURNS = """
route "Returns intake"
  from http "api" post "/v1/returns"
  read json
  to gate name "returns"
  dead letter to store
end
"""


async def test_requests_accepted_for_a_route_that_is_removed_are_kept_counted_and_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with serving(tmp_path, INTAKE + RETURNS, drain_timeout=0.2) as api:
        posted = await api.post("/v1/orders", ORDER)
        await eventually(lambda: WAITING.get("erp") == 1, "the order waits at the ERP")
        (tmp_path / "next").mkdir()
        without = lint([write_routes(tmp_path / "next", RETURNS, api.port)]).plan
        assert without is not None
        with caplog.at_level(logging.WARNING, logger="crossdock.connectors.http"):
            await api.engine.apply(without)  # the order is released after the drain timeout, not acked
        metrics = api.engine.telemetry.metrics
        await metrics.refresh()
        depths = metrics.readings.inboxes
        gate("erp").set()
    assert posted[0] == 202
    assert depths == {("Returns intake", "POST /v1/returns"): 0, ("", "POST /v1/orders"): 1}
    [row] = await inbox_rows(tmp_path / "data")
    assert row.endpoint == "POST /v1/orders" and row.body == ORDER
    assert any("stops with 1 accepted request(s) for POST /v1/orders" in r.getMessage() for r in caplog.records)


async def test_unknown_paths_and_methods_get_json_errors(tmp_path: Path) -> None:
    async with serving(tmp_path, INTAKE) as api:
        unknown = await api.get("/v2/nothing")
        wrong_method = await api.request("PUT", "/v1/orders", ORDER)
    assert (unknown[0], unknown[2]["error"]) == (404, "HTP040")
    assert (wrong_method[0], wrong_method[2]["error"]) == (405, "HTP041")
    assert wrong_method[1]["Allow"] == "POST"


# ---- request-reply ------------------------------------------------------------------------------


async def test_a_get_route_maps_the_path_and_query_and_replies(tmp_path: Path) -> None:
    async with serving(tmp_path, LOOKUPS) as api:
        status, headers, body = await api.get("/v1/prices/A-1?currency=EUR", headers={"X-Correlation-ID": "p-1"})
        default = await api.get("/v1/prices/B-2")
        filtered = await api.get("/v1/prices/NONE")
    assert status == 200
    assert body == {"sku": "A-1", "currency": "EUR", "price": "12.50"}
    assert headers["X-Correlation-ID"] == "p-1" and headers["Content-Type"] == "application/json"
    assert default[2]["currency"] == "USD"
    assert (filtered[0], filtered[2]["error"]) == (404, "HTP031")


async def test_a_post_route_in_request_reply_mode_answers_with_its_reply(tmp_path: Path) -> None:
    async with serving(tmp_path, LOOKUPS) as api:
        status, headers, body = await api.post("/v1/quotes", b'{"sku": "A-1", "qty": 3}')
        refused = await api.post("/v1/quotes", b"<quote/>", content_type="application/xml")
    assert status == 201 and body == {"sku": "A-1", "qty": 3}
    assert len(headers["X-Correlation-ID"]) == 32
    assert (refused[0], refused[2]["error"]) == (422, "D103")  # read json on XML: dead-lettered, with its code
    assert not (tmp_path / "data" / "http-inbox.db").exists()  # request-reply stores nothing


async def test_without_api_keys_the_rate_limit_is_per_client_address(tmp_path: Path) -> None:
    """A second connection on the same address shares the server; its route has no keys."""
    port = free_port()
    open_api = f"""
connection "open" is http
  listen "127.0.0.1:{port}"
end

route "Open intake"
  from http "open" post "/v1/open"
    rate limit 1
  read json
  to gate name "open"
  dead letter to store
end
"""
    async with serving(tmp_path, INTAKE + open_api, port=port) as api:
        first = await api.post("/v1/open", ORDER, key=None)
        second = await api.post("/v1/open", ORDER, key=None)
        keyed = await api.post("/v1/orders", ORDER)
        gate("open").set()
        gate("erp").set()
    assert first[0] == 202 and keyed[0] == 202
    assert (second[0], second[2]["error"]) == (429, "HTP029") and int(second[1]["Retry-After"]) >= 1


async def test_a_dead_lettered_call_is_answered_422_with_the_dead_letters_code(tmp_path: Path) -> None:
    async with serving(tmp_path, LOOKUPS) as api:
        status, _, body = await api.get("/v1/orders/PO-9", headers={"X-Correlation-ID": "strict-1"})
    assert status == 422
    assert body["error"] == "V001" and body["correlation_id"] == "strict-1"
    assert body["problems"] and all("path" in p for p in body["problems"])
    [entry] = await dead_letters(tmp_path / "data")
    assert entry.id == body["dead_letter"] and entry.correlation_id == "strict-1" and entry.code == "V001"
    assert json.loads(entry.payload) == {"path": {"po": "PO-9"}, "query": {}}


async def test_a_route_that_does_not_reply_in_time_is_answered_504(tmp_path: Path) -> None:
    async with serving(tmp_path, LOOKUPS) as api:
        status, _, body = await api.get("/v1/slow", headers={"X-Correlation-ID": "slow-1"})
        assert status == 504 and body["error"] == "HTP032" and body["correlation_id"] == "slow-1"
        gate("slow").set()  # the reply comes now, to nobody: it is dead-lettered as late
        await eventually(lambda: _dead_letter_codes(tmp_path / "data"), "the late reply is dead-lettered")
    [entry] = await dead_letters(tmp_path / "data")
    assert entry.code == "HTP034" and entry.correlation_id == "slow-1"


async def _dead_letter_codes(data: Path) -> list[str | None]:
    return [entry.code for entry in await dead_letters(data)]


# ---- the server's own endpoints -----------------------------------------------------------------


async def test_openapi_describes_the_routes_with_their_body_schema(tmp_path: Path) -> None:
    routes = tmp_path / "routes"
    routes.mkdir()
    shutil.copy(REPO / "routes" / "webstore-map.route", routes)
    shutil.copytree(REPO / "routes" / "schemas", routes / "schemas")
    intake = INTAKE.replace("  read json\n", '  read json\n  map with "Web order to Order"\n')
    validated = """
route "Invoices"
  from http "api" put "/v1/invoices/{number}"
  read json
  validate as Invoice
  to gate name "erp"
  dead letter to store
end
"""
    async with serving(tmp_path, intake + validated + LOOKUPS) as api:
        status, _, document = await api.get("/openapi.json", key=None)
    assert status == 200
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] and document["info"]["version"]
    post = document["paths"]["/v1/orders"]["post"]
    assert set(post["responses"]) >= {"202", "400", "401", "413", "415", "422", "429"}
    body_schema = post["requestBody"]["content"]["application/json"]["schema"]
    web_order = _resolve(document, body_schema["$ref"])
    assert {"number", "line_items"} <= set(web_order["properties"])
    assert list(post["requestBody"]["content"]) == ["application/json"]  # the route reads JSON only
    assert {p["name"] for p in post["parameters"]} == {"X-Correlation-ID", "Idempotency-Key"}
    put = document["paths"]["/v1/invoices/{number}"]["put"]
    invoice = _resolve(document, put["requestBody"]["content"]["application/json"]["schema"]["$ref"])
    assert "lines" in invoice["properties"]
    assert {"name": "number", "in": "path", "required": True, "schema": {"type": "string"}} in put["parameters"]
    lookup = document["paths"]["/v1/prices/{sku}"]["get"]
    assert "requestBody" not in lookup
    assert set(lookup["responses"]) >= {"200", "404", "422", "504"}
    assert lookup["responses"]["200"]["content"] == {"application/json": {}}
    assert document["components"]["securitySchemes"]["apiKey.X-Api-Key"] == {
        "type": "apiKey", "in": "header", "name": "X-Api-Key"}
    assert post["security"] == [{"apiKey.X-Api-Key": []}]
    for template, operations in document["paths"].items():
        declared = {p["name"] for op in operations.values() for p in op["parameters"] if p["in"] == "path"}
        assert declared == set(part[1:-1] for part in template.split("/") if part.startswith("{"))
        for operation in operations.values():
            assert operation["responses"] and operation["operationId"]
    _check_refs(document, document)


def _resolve(document: dict[str, Any], reference: str) -> Any:
    assert reference.startswith("#/"), reference
    node: Any = document
    for part in reference[2:].split("/"):
        node = node[part]
    return node


def _check_refs(document: dict[str, Any], node: Any) -> None:
    """Every $ref in the document points at something in it."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                _resolve(document, value)
            else:
                _check_refs(document, value)
    elif isinstance(node, list):
        for item in node:
            _check_refs(document, item)


async def test_health_and_ready(tmp_path: Path) -> None:
    async with serving(tmp_path, INTAKE + LOOKUPS) as api:
        health = await api.get("/health", key=None)
        ready = await api.ready()
        await api.post("/v1/orders", ORDER)
        await eventually(lambda: WAITING.get("erp") == 1, "a message is in flight")
        api.stop.set()  # the engine drains: the routes stop receiving, /ready says so at once
        await eventually(lambda: _ready_status(api, "stopping"), "/ready reports stopping")
        stopping = await api.ready()
        gate("erp").set()
    assert health[0] == 200 and health[2] == {"status": "ok"}
    assert ready == (200, {"status": "ready", "routes": {"receiving": 5, "expected": 5}})
    assert stopping[0] == 503


async def _ready_status(api: Api, wanted: str) -> bool:
    return (await api.ready())[1]["status"] == wanted


async def test_a_second_route_on_the_same_method_and_path_fails_and_ready_says_so(tmp_path: Path) -> None:
    twin = INTAKE.replace('"Order intake"', '"Order intake again"')
    async with serving(tmp_path, INTAKE + twin, wait_ready=False) as api:
        runners = list(api.engine.runners.values())
        await eventually(lambda: any(r.failure is not None for r in runners), "one of the twins gives up")
        await eventually(lambda: _health_ok(api), "the server serves the other one")
        status, body = await api.ready()
    [failed] = [r for r in runners if r.failure is not None]
    assert failed.failure is not None and failed.failure.code == "HTP002"
    assert status == 503 and body == {"status": "starting", "routes": {"receiving": 1, "expected": 2}}


async def _health_ok(api: Api) -> bool:
    try:
        return (await api.get("/health", key=None))[0] == 200
    except aiohttp.ClientConnectionError:
        return False


# ---- lint ---------------------------------------------------------------------------------------


def lint_codes(tmp_path: Path, text: str, listen: str = "127.0.0.1:8080") -> list[tuple[str, int, str]]:
    routes = write_routes(tmp_path, text, 8080)
    routes.joinpath("api.route").write_text(routes.joinpath("api.route").read_text().replace("127.0.0.1:8080", listen))
    return [(d.code, d.span.line, d.message) for d in lint([routes]).diagnostics]


@pytest.mark.parametrize(("source", "code", "line", "words"), [
    ('  from http "api"\n', "OPT006", 9, "needs a method and path"),
    ('  from http "api" post "/v1/orders"\n    put "/v1/orders"\n', "OPT005", 10, "one method"),
    ('  from http "api" post "v1/orders"\n', "OPT002", 9, "must start with /"),
    ('  from http "api" post "/v1/{id}/lines/{id}"\n', "OPT002", 9, "parameter name twice"),
    ('  from http "api" post "/health"\n', "OPT002", 9, "answered by the server itself"),
    ('  from http "api" get "/v1/prices"\n    mode intake\n', "OPT002", 10, "cannot be intake"),
    ('  from http "api" post "/v1/orders"\n    mode later\n', "OPT002", 10, "does not accept 'later'"),
    ('  from http "api" post "/v1/orders"\n    listen ":80"\n', "OPT003", 10, "belongs in a connection"),
])
def test_lint_checks_the_method_path_and_mode(tmp_path: Path, source: str, code: str, line: int, words: str) -> None:
    text = f'\nroute "r"\n{source}  read json\n  to gate name "g"\n  dead letter to store\nend\n'
    [(found, at, message)] = lint_codes(tmp_path, text)
    assert (found, at) == (code, line) and words in message


def test_lint_checks_the_listen_address(tmp_path: Path) -> None:
    [(code, line, message)] = lint_codes(tmp_path, INTAKE, listen="localhost")
    assert (code, line) == ("OPT002", 3) and "host:port" in message


def test_lint_accepts_every_option_of_a_request_reply_route(tmp_path: Path) -> None:
    text = """
route "Quote"
  from http "api" post "/v1/quotes/{customer}"
    mode request reply
    answer timeout 2s
    body timeout 10s
    max body 64 KiB
    rate limit 10
    rate limit window 1s
  read json
  reply 200
  dead letter to store
end
"""
    assert lint_codes(tmp_path, text) == []


@pytest.mark.parametrize(("written", "size"), [
    ("65536", 65536), ("64 KiB", 65536), ("5 MB", 5_000_000), ("1.5 mib", 1_572_864), ("2 GB", 2_000_000_000),
    ("100 bytes", 100),
])
def test_max_body_takes_a_size_in_bytes_or_with_a_unit(tmp_path: Path, written: str, size: int) -> None:
    routes = write_routes(tmp_path, INTAKE.replace('post "/v1/orders"', f'post "/v1/orders" max body {written}'),
                          8080)
    result = lint([routes])
    assert result.diagnostics == [] and result.plan is not None
    assert result.plan.routes["Order intake"].source.options.get("max_body") == size


@pytest.mark.parametrize(("written", "message"), [
    ("5 MiBs", "'max body' has an unknown unit of size 'MiBs'"),
    ("1.5 bytes", "'max body' is not a whole number of bytes"),
    ('"5 MB"', "'max body' takes a size such as 10 MB, 512 KiB or a number of bytes"),
])
def test_max_body_refuses_what_is_not_a_size(tmp_path: Path, written: str, message: str) -> None:
    text = INTAKE.replace('post "/v1/orders"', 'post "/v1/orders"\n    max body ' + written)
    assert [(code, line, text.split(" (")[0]) for code, line, text in lint_codes(tmp_path, text)] == [
        ("OPT002", 10, message)]
