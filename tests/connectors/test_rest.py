"""The REST connector against a real HTTP server on loopback (the ERP stand-in), never mocks."""

from __future__ import annotations

import json
import logging
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import formatdate
from pathlib import Path
from typing import Any

import anyio
import pytest
from servers.erp_standin import CLIENT_ID, CLIENT_PASSWORD, TOKEN_PATH, Answer, ErpStandIn

from crossdock.connectors import rest
from crossdock.connectors.base import ConnectorContext
from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.errors import CrossdockError, ErrorChain, PermanentError, TransientError, TransientKind
from crossdock.engine.message import Message
from crossdock.engine.services import Services

pytestmark = pytest.mark.anyio

BEARER = "bearer-7c1e0a"
BASIC_PASSWORD = "basic-pass-5d2"
API_KEY = "api-key-31b9"
ORDER = b'{"po": "PO-1", "warehouse": "DAL"}'


def sink_options(erp: ErpStandIn, request: tuple[str, str] = ("post", "/orders"), **extra: Any) -> dict[str, Any]:
    return {"base_url": f"{erp.base_url}/api", request[0]: request[1], "format": "json", **extra}


@asynccontextmanager
async def opened(options: dict[str, Any], clock: ManualClock | None = None) -> AsyncIterator[rest.RestSink]:
    context = ConnectorContext(owner="test", clock=clock or ManualClock())
    async with rest.open_sink(options, context) as sink:
        yield sink


def message(body: bytes = ORDER, **fields: Any) -> Message:
    return Message(body=body, route="r", message_id="m-1", correlation_id=fields.pop("correlation_id", "corr-1"),
                   **fields)


async def failure(sink: rest.RestSink, msg: Message | None = None) -> CrossdockError:
    with pytest.raises(CrossdockError) as info:
        await sink.send(msg or message())
    return info.value


# ---- lint ---------------------------------------------------------------------------------------

CONNECTION = """connection "inbox" is file
  folder "inbox"
end
connection "erp-api" is rest
  base url "http://erp.example.com"
  auth bearer secret "ERP_TOKEN"
end
"""


def lint_text(tmp_path: Path, text: str) -> list[tuple[str, int, int]]:
    (tmp_path / "test.route").write_text(text)
    return [(d.code, d.span.line, d.span.column) for d in lint([tmp_path]).errors]


def test_lint_accepts_a_sink_with_one_request_line_and_a_path_template(tmp_path: Path) -> None:
    assert lint_text(tmp_path, CONNECTION + """route "r"
  from file "inbox"
  read json
  to rest "erp-api"
    put "/orders/{{ po }}"
    header "Idempotency-Key" = po
  dead letter to store
end
""") == []


def test_lint_reports_a_missing_request_line_at_the_connector(tmp_path: Path) -> None:
    assert lint_text(tmp_path, CONNECTION + """route "r"
  from file "inbox"
  to rest "erp-api"
    header "X-Source" "crossdock"
  dead letter to store
end
""") == [("OPT006", 10, 6)]


def test_lint_reports_a_second_request_line_where_it_is_written(tmp_path: Path) -> None:
    (tmp_path / "test.route").write_text(CONNECTION + """route "r"
  from file "inbox"
  to rest "erp-api"
    post "/orders"
    put "/orders/{{ po }}"
  dead letter to store
end
""")
    errors = lint([tmp_path]).errors
    assert [(d.code, d.span.line, d.span.column) for d in errors] == [("OPT005", 12, 5)]
    assert "'post' and 'put'" in errors[0].message


def test_lint_reports_two_kinds_of_auth_and_incomplete_auth(tmp_path: Path) -> None:
    assert lint_text(tmp_path, """connection "erp-api" is rest
  base url "http://erp.example.com"
  auth bearer secret "ERP_TOKEN"
  auth basic user "crossdock"
end
route "r"
  from queue queue "in"
  to rest "erp-api" post "/orders"
  dead letter to store
end
""") == [("OPT005", 4, 3), ("OPT006", 4, 3)]


def test_lint_keeps_secrets_out_of_route_files_and_auth_out_of_steps(tmp_path: Path) -> None:
    assert lint_text(tmp_path, """connection "erp-api" is rest
  base url "http://erp.example.com"
  auth bearer "plain-token"
end
route "r"
  from queue queue "in"
  to rest "erp-api"
    post "/orders"
    auth api key secret "K"
  dead letter to store
end
""") == [("OPT002", 3, 15), ("OPT003", 9, 5)]


# ---- classification -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_2xx_is_delivered(erp: ErpStandIn, status: int) -> None:
    erp.answer(Answer(status, body=b"" if status == 204 else b'{"id": "ERP-1"}'))
    async with opened(sink_options(erp)) as sink:
        await sink.send(message())
    assert [(r.method, r.path, r.body) for r in erp.requests] == [("POST", "/api/orders", ORDER)]


@pytest.mark.parametrize(("status", "code"), [(400, "RST400"), (401, "RST401"), (403, "RST403"), (404, "RST404"),
                                              (409, "RST409"), (410, "RST400"), (422, "RST422")])
async def test_client_errors_are_permanent_with_status_and_body_excerpt(erp: ErpStandIn, status: int,
                                                                         code: str) -> None:
    erp.answer(Answer(status, body=b'{"error": "sku A-9 is unknown"}'))
    async with opened(sink_options(erp)) as sink:
        error = await failure(sink)
    assert type(error) is PermanentError
    assert error.code == code
    assert error.details["status"] == status
    assert error.details["body"] == '{"error": "sku A-9 is unknown"}'
    assert "sku A-9 is unknown" in error.message


@pytest.mark.parametrize(("status", "kind", "code"), [
    (408, TransientKind.TIMEOUT, "RST408"), (429, TransientKind.THROTTLED, "RST429"),
    (500, TransientKind.OTHER, "RST500"), (502, TransientKind.UNAVAILABLE, "RST502"),
    (503, TransientKind.UNAVAILABLE, "RST503"), (504, TransientKind.TIMEOUT, "RST504"),
    (507, TransientKind.OTHER, "RST500"),
])
async def test_server_side_statuses_are_transient(erp: ErpStandIn, status: int, kind: TransientKind,
                                                  code: str) -> None:
    erp.answer(Answer(status, body=b"busy"))
    async with opened(sink_options(erp)) as sink:
        error = await failure(sink)
    assert isinstance(error, TransientError)
    assert (error.kind, error.code, error.retry_after, error.details["status"]) == (kind, code, None, status)


async def test_retry_after_in_seconds_and_as_an_http_date(erp: ErpStandIn) -> None:
    clock = ManualClock()
    erp.answer(Answer(429, headers={"Retry-After": "7"}),
               Answer(503, headers={"Retry-After": formatdate(clock.now() + 120, usegmt=True)}),
               Answer(503, headers={"Retry-After": "soon"}))
    async with opened(sink_options(erp), clock) as sink:
        errors = [await failure(sink) for _ in range(3)]
    assert [(e.code, e.retry_after) for e in errors if isinstance(e, TransientError)] == [
        ("RST429", 7.0), ("RST503", 120.0), ("RST503", None)]


async def test_a_redirect_is_not_followed(erp: ErpStandIn) -> None:
    erp.answer(Answer(301, headers={"Location": "https://erp.example.com/api/orders"}))
    async with opened(sink_options(erp)) as sink:
        error = await failure(sink)
    assert (type(error), error.code, error.details["location"]) == (
        PermanentError, "RST300", "https://erp.example.com/api/orders")
    assert len(erp.requests) == 1


async def test_the_body_excerpt_of_an_error_is_bounded(erp: ErpStandIn) -> None:
    erp.answer(Answer(422, body=b"x" * 200_000))
    async with opened(sink_options(erp, max_response_size=10_000)) as sink:
        error = await failure(sink)
    assert error.code == "RST422"
    assert error.details["body"] == "x" * rest.EXCERPT_BYTES + "…"


async def test_a_huge_answer_is_read_only_up_to_the_limit_and_the_pool_goes_on(erp: ErpStandIn) -> None:
    erp.answer(Answer(200, body=b"y" * 5_000_000), Answer(200, body=b"y" * 5_000_000))
    async with opened(sink_options(erp, max_response_size=1000)) as sink:
        await sink.send(message())  # delivered: the status says so, the body is not needed
        response = await sink.client.call("GET", "/catalog")
        await sink.send(message())
    assert (response.status, len(response.body), response.truncated) == (200, 1000, True)
    assert len(erp.requests) == 3


async def test_a_read_timeout_is_transient(erp: ErpStandIn) -> None:
    erp.answer(Answer(201, delay=30))
    async with opened(sink_options(erp, read_timeout=0.2)) as sink:
        error = await failure(sink)
    assert isinstance(error, TransientError)
    assert (error.kind, error.code) == (TransientKind.TIMEOUT, "RST002")
    assert "read timeout" in error.message


async def test_the_whole_request_timeout_is_transient(erp: ErpStandIn) -> None:
    erp.answer(Answer(201, delay=30))
    async with opened(sink_options(erp, timeout=0.3)) as sink:
        error = await failure(sink)
    assert isinstance(error, TransientError)
    assert (error.kind, error.code) == (TransientKind.TIMEOUT, "RST002")
    assert "no complete answer within 0.3s" in error.message


async def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with opened({"base_url": f"http://127.0.0.1:{port}", "post": "/orders", "format": "json"}) as sink:
        error = await failure(sink)
    assert isinstance(error, TransientError)
    assert (error.kind, error.code) == (TransientKind.CONNECTION, "RST001")


@pytest.mark.parametrize(("mode", "words"), [("close-mid", "in the middle of its answer"),
                                             ("garbage", "not valid HTTP")])
async def test_a_peer_that_breaks_off_or_answers_garbage_is_transient(erp: ErpStandIn, mode: str,
                                                                      words: str) -> None:
    erp.answer(Answer(201, mode=mode))  # type: ignore[arg-type]
    async with opened(sink_options(erp)) as sink:
        error = await failure(sink)
        await sink.send(message())  # the pool recovers
    assert isinstance(error, TransientError)
    assert (error.kind, error.code) == (TransientKind.CONNECTION, "RST003")
    assert words in error.message


async def test_a_base_url_that_is_not_http_is_refused_when_the_sink_opens() -> None:
    with pytest.raises(PermanentError) as info:
        rest.open_sink({"base_url": "ftp://erp.example.com", "post": "/orders"}, ConnectorContext(owner="t"))
    assert info.value.code == "RST010"


# ---- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("auth", "header", "value"), [
    ({"auth_bearer": BEARER}, "Authorization", f"Bearer {BEARER}"),
    ({"auth_basic_user": "crossdock", "auth_basic_password": BASIC_PASSWORD}, "Authorization",
     "Basic Y3Jvc3Nkb2NrOmJhc2ljLXBhc3MtNWQy"),
    ({"auth_api_key": API_KEY}, "X-Api-Key", API_KEY),
    ({"auth_api_key": API_KEY, "auth_api_key_header": "X-Shop-Key"}, "X-Shop-Key", API_KEY),
])
async def test_static_auth_reaches_the_server(erp: ErpStandIn, auth: dict[str, str], header: str,
                                              value: str) -> None:
    async with opened(sink_options(erp, **auth)) as sink:
        await sink.send(message(meta={"headers": [(header, "from the route")]}))
    assert erp.requests[0].headers[header] == value  # auth wins over a header line of the same name


def oauth2(**extra: Any) -> dict[str, Any]:
    return {"auth_oauth2_client_id": CLIENT_ID, "auth_oauth2_client_password": CLIENT_PASSWORD,
            "auth_oauth2_scope": "orders.write", **extra}


@pytest.mark.parametrize("credentials_in", ["header", "body"])
async def test_oauth2_token_is_fetched_once_and_reused(erp: ErpStandIn, credentials_in: str) -> None:
    erp.check_tokens = True
    options = sink_options(erp, **oauth2(auth_oauth2_token_url=erp.base_url + TOKEN_PATH,
                                         auth_oauth2_credentials_in=credentials_in))
    async with opened(options) as sink:
        for _ in range(3):
            await sink.send(message())
    assert [r.headers["Authorization"] for r in erp.requests] == ["Bearer token-1"] * 3
    assert len(erp.token_requests) == 1
    form = erp.token_requests[0].body.decode()
    assert "grant_type=client_credentials" in form and "scope=orders.write" in form
    assert ("client_secret=" in form) is (credentials_in == "body")


async def test_oauth2_token_is_renewed_before_it_expires(erp: ErpStandIn) -> None:
    erp.check_tokens = True
    clock = ManualClock()
    async with opened(sink_options(erp, **oauth2(auth_oauth2_token_url=erp.base_url + TOKEN_PATH)), clock) as sink:
        await sink.send(message())
        clock.advance(3600 - 61)  # still more than the margin (60s) left
        await sink.send(message())
        clock.advance(2)
        await sink.send(message())
    assert [r.headers["Authorization"] for r in erp.requests] == ["Bearer token-1", "Bearer token-1",
                                                                  "Bearer token-2"]


async def test_oauth2_token_refused_by_the_api_is_fetched_again_once(erp: ErpStandIn) -> None:
    erp.check_tokens = True
    async with opened(sink_options(erp, **oauth2(auth_oauth2_token_url=erp.base_url + TOKEN_PATH))) as sink:
        await sink.send(message())
        erp.revoke_tokens()  # the server forgot its tokens (a restart, a key rotation)
        await sink.send(message())
        erp.answer(Answer(401), Answer(401))  # refused whatever the token
        error = await failure(sink)
    assert [r.headers["Authorization"] for r in erp.requests] == [
        "Bearer token-1", "Bearer token-1", "Bearer token-2", "Bearer token-2", "Bearer token-3"]
    assert len(erp.token_requests) == 3
    assert (type(error), error.code) == (PermanentError, "RST401")


async def test_oauth2_refused_client_is_permanent_and_a_down_token_endpoint_transient(erp: ErpStandIn) -> None:
    options = sink_options(erp, **oauth2(auth_oauth2_token_url=erp.base_url + TOKEN_PATH,
                                         auth_oauth2_client_password="wrong-pass-0a1"))
    async with opened(options) as sink:
        refused = await failure(sink)
    erp.answer_token(Answer(503, body=b"maintenance"), Answer(200, body=b"<html>login</html>"))
    async with opened(sink_options(erp, **oauth2(auth_oauth2_token_url=erp.base_url + TOKEN_PATH))) as sink:
        down = await failure(sink)
        garbled = await failure(sink)
    assert (type(refused), refused.code) == (PermanentError, "RST012")
    assert "invalid_client unknown client" in refused.message
    assert isinstance(down, TransientError) and down.code == "RST503"
    assert (type(garbled), garbled.code) == (PermanentError, "RST012")
    assert erp.requests == []  # no API call without a token


async def test_secrets_never_reach_logs_or_errors(erp: ErpStandIn, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[CrossdockError] = []
    for auth in ({"auth_bearer": BEARER}, {"auth_basic_user": "crossdock", "auth_basic_password": BASIC_PASSWORD},
                 {"auth_api_key": API_KEY}, oauth2(auth_oauth2_token_url=erp.base_url + TOKEN_PATH)):
        refusals = 2 if "auth_oauth2_token_url" in auth else 1  # OAuth2 tries once more with a new token
        erp.answer(Answer(201, mode="garbage"), *[Answer(401)] * refusals, Answer(422, body=b"no"))
        async with opened(sink_options(erp, **auth)) as sink:
            errors.append(await failure(sink))
            errors.append(await failure(sink))
            errors.append(await failure(sink))
            errors.append(await failure(sink, message(body={"not": "bytes"})))  # type: ignore[arg-type]
        text = caplog.text + repr(sink.client.settings) + json.dumps(
            [ErrorChain.of(e).errors for e in errors], default=str) + "".join(map(str, errors))
        for secret in (BEARER, BASIC_PASSWORD, API_KEY, CLIENT_PASSWORD, "token-1", "Y3Jvc3Nkb2Nr"):
            assert secret not in text
    assert [e.code for e in errors[:4]] == ["RST003", "RST401", "RST422", "RST011"]
    # no library exception rides along as context: aiohttp's repr of one shows the request headers
    assert {len(ErrorChain.of(e).errors) for e in errors} == {1}


# ---- headers, paths, bodies ---------------------------------------------------------------------


async def test_idempotency_key_and_correlation_id_are_sent(erp: ErpStandIn) -> None:
    async with opened(sink_options(erp)) as sink:
        await sink.send(message(idempotency_key="PO-1",
                                headers={"Authorization": "from the source", "X-Other": "not forwarded"}))
        await sink.send(message(idempotency_key="PO-1", meta={"headers": [("idempotency-key", "route-key"),
                                                                        ("X-Correlation-ID", "forged")]}))
        await sink.send(message())
    first, second, third = (r.headers for r in erp.requests)
    assert (first["Idempotency-Key"], first["X-Correlation-ID"], first["Content-Type"]) == (
        "PO-1", "corr-1", "application/json")
    assert "Authorization" not in first and "X-Other" not in first
    assert (second.getall("Idempotency-Key"), second.getall("X-Correlation-ID")) == (["route-key"], ["corr-1"])
    assert "Idempotency-Key" not in third


@pytest.mark.parametrize(("extra", "meta", "expected"), [
    ({"format": "x12"}, {}, "application/edi-x12"),
    ({"content_type": "application/vnd.erp.order+json"}, {}, "application/vnd.erp.order+json"),
    ({}, {"content_type": "application/xml"}, "application/xml"),
])
async def test_content_type_follows_the_format_unless_told(erp: ErpStandIn, extra: dict[str, str],
                                                           meta: dict[str, str], expected: str) -> None:
    async with opened(sink_options(erp, **extra)) as sink:
        await sink.send(message(meta=meta))
    assert erp.requests[0].headers["Content-Type"] == expected


async def test_header_values_that_cannot_be_sent_are_permanent(erp: ErpStandIn) -> None:
    async with opened(sink_options(erp)) as sink:
        missing = await failure(sink, message(meta={"headers": [("X-PO", None)]}))
        split = await failure(sink, message(meta={"headers": [("X-PO", "PO-1\r\nX-Admin: yes")]}))
    assert (missing.code, split.code) == ("RST011", "RST011")
    assert erp.requests == []


@pytest.mark.parametrize("method", ["get", "delete"])
async def test_get_and_delete_send_no_body(erp: ErpStandIn, method: str) -> None:
    async with opened(sink_options(erp, (method, "/orders/PO-1"))) as sink:
        await sink.send(message(meta={method: "/orders/PO-1?full=yes"}))
    assert [(r.method, r.path, r.query, r.body) for r in erp.requests] == [
        (method.upper(), "/api/orders/PO-1", "full=yes", b"")]
    assert "Content-Type" not in erp.requests[0].headers


async def test_call_returns_the_answer_whatever_its_status(erp: ErpStandIn) -> None:
    erp.answer(Answer(200, body=b'{"sku": "A-1", "on_hand": 12}', headers={"ETag": '"v7"'}), Answer(404))
    async with opened(sink_options(erp, auth_bearer=BEARER)) as sink:
        found = await sink.client.call("GET", "/products/A-1", headers={"Accept": "application/json"})
        missing = await sink.client.call("get", "/products/B-2")
    assert (found.status, json.loads(found.body), found.headers["ETag"]) == (200, {"sku": "A-1", "on_hand": 12},
                                                                            '"v7"')
    assert found.error() is None
    assert missing.status == 404
    error = missing.error()
    assert error is not None and error.code == "RST404"
    assert [(r.method, r.path, r.headers["Authorization"]) for r in erp.requests] == [
        ("GET", "/api/products/A-1", f"Bearer {BEARER}"), ("GET", "/api/products/B-2", f"Bearer {BEARER}")]


async def test_call_refuses_a_path_that_leaves_the_base_url(erp: ErpStandIn) -> None:
    async with opened(sink_options(erp)) as sink:
        with pytest.raises(PermanentError) as info:
            await sink.client.call("GET", "https://elsewhere.example.com/steal")
    assert info.value.code == "RST010"


# ---- circuit breaker ----------------------------------------------------------------------------


async def test_breaker_opens_fails_fast_probes_and_closes(erp: ErpStandIn) -> None:
    clock = ManualClock()
    options = sink_options(erp, ("post", "/orders/{{ po }}"), circuit_breaker_threshold=3,
                           circuit_breaker_cool_down=30.0)
    erp.answer(*[Answer(503)] * 4)
    async with opened(options, clock) as sink:
        endpoint = f"127.0.0.1:{erp.port}/api/orders/{{{{ po }}}}"

        def state() -> tuple[rest.BreakerStatus, int, float | None]:
            found = sink.client.breakers()[endpoint]
            return found.state, found.failures, found.opened_at

        def order(number: int) -> Message:  # what the runtime hands over: the path rendered per message
            return message(meta={"post": f"/orders/PO-{number}"})

        for number in range(3):
            await failure(sink, order(number))
        assert state() == (rest.BreakerStatus.OPEN, 3, clock.now())
        opened_at = clock.now()

        clock.advance(10)
        fast = await failure(sink, order(3))
        assert isinstance(fast, TransientError)
        assert (fast.code, fast.kind, fast.retry_after) == ("RST004", TransientKind.UNAVAILABLE, 20.0)
        assert len(erp.requests) == 3  # failing fast: the API was not called

        clock.advance(20)
        assert state() == (rest.BreakerStatus.HALF_OPEN, 3, opened_at)
        probe = await failure(sink, order(3))  # the probe gets the 4th 503: open again
        assert probe.code == "RST503"
        assert state() == (rest.BreakerStatus.OPEN, 4, clock.now())
        assert (await failure(sink, order(3))).code == "RST004"

        clock.advance(30)
        await sink.send(order(3))  # the probe succeeds
        assert state() == (rest.BreakerStatus.CLOSED, 0, None)
        await sink.send(order(4))
    assert len(erp.requests) == 6


async def test_half_open_lets_one_probe_through_at_a_time(erp: ErpStandIn) -> None:
    clock = ManualClock()
    options = sink_options(erp, circuit_breaker_threshold=1, circuit_breaker_cool_down=5.0)
    erp.answer(Answer(502), Answer(201, mode="hold"))
    async with opened(options, clock) as sink:
        await failure(sink)
        clock.advance(5)
        async with anyio.create_task_group() as group:
            group.start_soon(sink.send, message())
            while len(erp.requests) < 2:  # the probe reached the server and is held there
                await anyio.sleep(0.01)
            second = await failure(sink)
            erp.release()
        assert sink.client.breakers()[sink.client.endpoint("/orders")].state is rest.BreakerStatus.CLOSED
    assert isinstance(second, TransientError)
    assert (second.code, second.retry_after) == ("RST004", None)
    assert len(erp.requests) == 2


async def test_breakers_are_per_endpoint_and_client_errors_do_not_count(erp: ErpStandIn) -> None:
    options = sink_options(erp, circuit_breaker_threshold=2)
    erp.answer(Answer(503), Answer(422), Answer(503), Answer(504), Answer(200))
    async with opened(options) as sink:
        client = sink.client
        await client.call("POST", "/orders")
        await client.call("POST", "/orders")  # 422: the endpoint answered, the count starts again
        await client.call("POST", "/orders")
        assert client.breakers()[f"127.0.0.1:{erp.port}/api/orders"].state is rest.BreakerStatus.CLOSED
        await client.call("POST", "/orders")
        await client.call("GET", "/stock?sku=A-1")
        states = {name: state.state for name, state in client.breakers().items()}
    assert states == {f"127.0.0.1:{erp.port}/api/orders": rest.BreakerStatus.OPEN,
                      f"127.0.0.1:{erp.port}/api/stock": rest.BreakerStatus.CLOSED}


# ---- routes on the engine -----------------------------------------------------------------------

ROUTES = """
connection "inbox" is file
  folder "inbox"
  files "*.json"
  settle 0s
end

connection "erp-api" is rest
  base url env "ERP_URL"
  auth bearer secret "ERP_TOKEN"
  timeout 10s
end

route "orders to erp"
  from file "inbox"
  read json
  skip duplicates by po for 90d
  to rest "erp-api"
    post "/api/v2/orders/{{ po }}"
    header "X-Warehouse" = warehouse
  retry 5 times backoff exponential from 2s up to 1m
  dead letter to store
end
"""


async def run_route(tmp_path: Path, erp: ErpStandIn, clock: ManualClock) -> Engine:
    routes = tmp_path / "routes"
    routes.mkdir()
    (routes / "erp.route").write_text(ROUTES)
    inbox = tmp_path / "data" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "po-1.json").write_bytes(ORDER)
    result = lint([routes])
    assert not result.errors, [str(d) for d in result.errors]
    assert result.plan is not None
    async with embedded_stores(tmp_path / "data") as stores:
        services = Services(stores=stores, data_dir=tmp_path / "data", clock=clock, rng=random.Random(7),
                            env={"ERP_URL": erp.base_url, "ERP_TOKEN": BEARER})
        engine = Engine(result.plan, services)
        await engine.run(once=True, stop=anyio.Event())
    return engine


async def test_route_retries_503_then_delivers_once(tmp_path: Path, erp: ErpStandIn) -> None:
    erp.answer(Answer(503, headers={"Retry-After": "7"}), Answer(503), Answer(201))
    clock = ManualClock()
    engine = await run_route(tmp_path, erp, clock)
    stats = engine.stats.routes["orders to erp"]
    assert (stats.delivered, stats.retried, stats.dead_lettered) == (1, 2, 0)
    assert clock.sleeps == [7.0, 4.0]  # Retry-After as a floor, then the backoff's 2s, 4s
    assert [(r.method, r.path, json.loads(r.body)) for r in erp.requests] == [
        ("POST", "/api/v2/orders/PO-1", {"po": "PO-1", "warehouse": "DAL"})] * 3
    headers = [r.headers for r in erp.requests]
    assert {(h["Idempotency-Key"], h["X-Warehouse"], h["Authorization"], h["X-Correlation-ID"])
            for h in headers} == {("PO-1", "DAL", f"Bearer {BEARER}", headers[0]["X-Correlation-ID"])}
    assert (tmp_path / "data" / "inbox" / "done" / "po-1.json").exists()


async def test_route_dead_letters_422_with_status_and_body(tmp_path: Path, erp: ErpStandIn) -> None:
    erp.answer(Answer(422, body=b'{"errors": [{"field": "lines[0].sku", "message": "unknown sku A-9"}]}'))
    clock = ManualClock()
    engine = await run_route(tmp_path, erp, clock)
    assert engine.stats.routes["orders to erp"].dead_lettered == 1
    assert clock.sleeps == []
    assert len(erp.requests) == 1
    async with embedded_stores(tmp_path / "data") as stores:
        [entry] = await stores.dead_letters.list(limit=10)
    assert entry.code == "RST422"
    assert entry.error["status"] == 422
    assert "unknown sku A-9" in entry.error["body"]
    assert entry.payload == ORDER
    assert BEARER not in json.dumps([entry.error, entry.error_chain, entry.meta, entry.attempts], default=str)
    assert (tmp_path / "data" / "inbox" / "failed" / "po-1.json").exists()
