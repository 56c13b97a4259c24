"""Logs: one JSON line (or one readable line) per stage transition with its fields; secrets never in
logs or in the dead-letter store."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ops_world import engine_for, run_once, write_project
from servers.erp_standin import Answer, ErpStandIn
from servers.ports import free_port

from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import embedded_stores
from crossdock.ops.logging import (
    MASK,
    RedactingFilter,
    SecretRegistry,
    configure_logging,
    default_format,
)

pytestmark = pytest.mark.anyio

ROUTES = """
connection "inbox" is file
  folder "inbox"
  files "*.json"
  settle 0s
end

connection "erp-api" is rest
  base url env "ERP_URL"
end

route "orders"
  from file "inbox"
  process 1 at a time
  read json
  skip duplicates by po for 30 days
  keep only when qty > 0
  map with "Order out"
  to rest "erp-api"
    post "/orders"
  retry 3 times backoff fixed 1s
  dead letter to store
end

map "Order out"
  from json
  to json
  po_number = po
  quantity = qty
end
"""


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger configured as `crossdock run` does, into a buffer; put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    yield buffer
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def order(po: str, qty: int = 1) -> bytes:
    return json.dumps({"po": po, "qty": qty}).encode()


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


async def test_each_stage_transition_is_one_json_line_with_route_step_ids_key_attempt_and_code(
        tmp_path: Path, erp: ErpStandIn, captured: io.StringIO) -> None:
    configure_logging("json", stream=captured)
    erp.answer(Answer(503))
    routes = write_project(tmp_path, ROUTES, {"inbox": {
        "a.json": order("PO-1"), "b.json": order("PO-1"), "c.json": b"{broken", "d.json": order("PO-2", qty=0)}})
    async with embedded_stores(tmp_path / "data") as stores:
        await run_once(engine_for(tmp_path, routes, stores, env={"ERP_URL": erp.base_url}))

    lines = json_lines(captured)
    events = [line for line in lines if line["logger"] == "crossdock.events"]
    assert all(set(line) >= {"time", "level", "message", "event", "route", "step", "correlation_id", "message_id",
                             "business_key", "attempt"} for line in events)
    assert all(line["message"] == line["event"] and line["route"] == "orders" for line in events)
    by_message: dict[str, list[dict[str, Any]]] = {}
    for line in events:
        by_message.setdefault(line["correlation_id"], []).append(line)
    stories = {tuple(line["event"] for line in story): story for story in by_message.values()}
    delivered = stories[("received", "decoded", "mapped", "retried", "delivered", "acked")]
    duplicate = stories[("received", "decoded", "duplicate", "acked")]
    broken = stories[("received", "dead-lettered", "acked")]
    filtered = stories[("received", "decoded", "filtered", "acked")]
    assert len(stories) == 4

    rest = 'to rest "erp-api"'
    assert [(e["level"], e["step"], e["attempt"], e["business_key"]) for e in delivered] == [
        ("info", 'from file "inbox"', 1, None), ("info", "read json", 1, None),
        ("info", 'map with "Order out"', 1, "PO-1"), ("warning", rest, 1, "PO-1"), ("info", rest, 2, "PO-1"),
        ("info", None, 1, None)]
    retried = delivered[3]
    assert (retried["code"], retried["wait"]) == ("RST503", 1.0)
    assert "answered 503" in retried["error"]
    assert delivered[-1]["outcome"] == "delivered"
    assert (duplicate[2]["step"], duplicate[2]["business_key"], duplicate[3]["outcome"]) == (
        "skip duplicates", "PO-1", "duplicate")
    failure = broken[1]
    assert (failure["level"], failure["step"], failure["code"], failure["attempt"]) == (
        "error", "read json", "D103", 1)
    assert failure["dead_letter"]
    assert (filtered[2]["step"], filtered[2]["business_key"]) == ("keep only when", "PO-2")


async def test_the_console_format_is_one_readable_line_per_event(
        tmp_path: Path, erp: ErpStandIn, captured: io.StringIO) -> None:
    configure_logging("console", stream=captured)
    routes = write_project(tmp_path, ROUTES, {"inbox": {"a.json": order("PO-7")}})
    async with embedded_stores(tmp_path / "data") as stores:
        await run_once(engine_for(tmp_path, routes, stores, env={"ERP_URL": erp.base_url}))
    events = [line for line in captured.getvalue().splitlines() if " crossdock.events: " in line]
    assert [line.split(" crossdock.events: ")[1].split(" ")[0] for line in events] == [
        "received", "decoded", "mapped", "delivered", "acked"]
    delivered = events[3]
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} INFO    crossdock\.events: delivered route=orders "
                        r'step="to rest \\"erp-api\\"" correlation_id=[0-9a-f]{32} message_id=[0-9a-f]{32} '
                        r"business_key=PO-7 attempt=1", delivered), delivered


@pytest.mark.parametrize(("terminal", "expected"), [(True, "console"), (False, "json")])
def test_json_unless_stderr_is_a_terminal(terminal: bool, expected: str) -> None:
    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return terminal

    assert default_format(Stream()) == expected


def test_the_registry_masks_secrets_their_parts_and_credentials_it_cannot_know() -> None:
    secrets = SecretRegistry()
    for value in ("tok-3f9a77", "key-one, key-two\nkey-three", "amqp://crossdock:p%40ss-word@broker/", "ab", None):
        secrets.add(value)
    secrets.add_url_password("https://user:env-pass-41@erp.example.com/api")
    text = ("token tok-3f9a77; keys key-one key-three; broker p@ss-word p%40ss-word; env env-pass-41; "
            "Authorization: Bearer unknown.token-xyz; Basic Y3Jvc3Nkb2NrOmh1bnRlcjI=; Basic auth stays; "
            "sftp://ops:hunter2@host/x; ab stays")
    assert secrets.redact(text) == (
        f"token {MASK}; keys {MASK} {MASK}; broker {MASK} {MASK}; env {MASK}; Authorization: Bearer {MASK}; "
        f"Basic {MASK}; Basic auth stays; sftp://ops:{MASK}@host/x; ab stays")
    nested = {"error": ["tok-3f9a77", ("key-two", 3)], "at": 1.5}
    assert secrets.scrub(nested) == {"error": [MASK, (MASK, 3)], "at": 1.5}


def test_the_filter_masks_message_arguments_fields_and_tracebacks() -> None:
    secrets = SecretRegistry()
    secrets.add("s3cret-token")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "login with %s failed", ("s3cret-token",), None)
    record.fields = {"error": "echo s3cret-token"}
    try:
        raise ValueError("the token s3cret-token was refused")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter(secrets).filter(record)
    assert (record.getMessage(), record.fields) == (f"login with {MASK} failed", {"error": f"echo {MASK}"})
    assert "s3cret-token" not in (record.exc_text or "") and "was refused" in (record.exc_text or "")


SECRET_ROUTES = """
connection "inbox" is file
  folder "inbox"
  files "*.json"
  settle 0s
end

connection "erp-api" is rest
  base url env "ERP_URL"
  auth bearer secret "ERP_TOKEN"
end

connection "broker" is amqp
  url secret "AMQP_URL"
end

connection "partner" is sftp
  host "127.0.0.1"
  port CLOSED
  user "crossdock"
  password secret "SFTP_PASSWORD"
  known hosts "known_hosts"
  connect timeout 5s
end

route "orders"
  from file "inbox"
  read json
  to rest "erp-api"
    post "/orders"
  retry 1 times backoff fixed 1s
  dead letter to store
end

route "events"
  from file "inbox"
    files "*.event"
  to amqp "broker" queue "events"
  dead letter to store
end

route "partner files"
  from file "inbox"
    files "*.edi"
  to sftp "partner" folder "/in"
  retry 1 times backoff fixed 1s
  dead letter to store
end
"""
TOKEN = "erp-token-5c0ffee"
AMQP_PASSWORD = "amqp-pass-8e1d"
SFTP_PASSWORD = "sftp-pass-77b2"


async def test_no_secret_reaches_the_logs_the_dead_letter_store_or_the_journal(
        tmp_path: Path, erp: ErpStandIn, captured: io.StringIO) -> None:
    configure_logging("json", level=logging.DEBUG, stream=captured)
    closed = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ERP_TOKEN").write_text(TOKEN)
    (secrets / "AMQP_URL").write_text(f"amqp://crossdock:{AMQP_PASSWORD}@127.0.0.1:{closed}/")
    (secrets / "SFTP_PASSWORD").write_text(SFTP_PASSWORD)
    # the ERP echoes the Authorization header it refused, once as transient, then as permanent
    echo = json.dumps({"error": "bad credentials", "received": {"Authorization": f"Bearer {TOKEN}"}}).encode()
    erp.answer(Answer(503, body=echo), Answer(401, body=echo))
    routes = write_project(tmp_path, SECRET_ROUTES.replace("CLOSED", str(closed)), {
        "inbox": {"a.json": b'{"po": "PO-1"}', "b.event": b"{}", "c.edi": b"ISA"}, ".": {"known_hosts": b""}})
    env = {"ERP_URL": erp.base_url, "CROSSDOCK_SECRETS_DIR": str(secrets)}
    async with embedded_stores(tmp_path / "data") as stores:
        engine = engine_for(tmp_path, routes, stores, clock=ManualClock(), env=env)
        await run_once(engine)
        entries = await stores.dead_letters.list(limit=100)
        journal = await stores.journal.events(limit=1000)

    stored = json.dumps([_plain(entry) for entry in entries] + [_plain(event) for event in journal], default=str)
    logged = captured.getvalue()
    for secret in (TOKEN, AMQP_PASSWORD, SFTP_PASSWORD):
        assert secret not in logged
        assert secret not in stored
    # the paths that would have shown them were taken: the echo was stored and logged, masked
    [refused] = [entry for entry in entries if entry.route == "orders"]
    assert refused.code == "RST401"
    assert f"Bearer {MASK}" in refused.error["body"]
    assert f"Bearer {MASK}" in json.dumps(refused.attempts)
    retried = [line for line in json_lines(captured) if line.get("event") == "retried" and line["route"] == "orders"]
    assert [line["code"] for line in retried] == ["RST503"]
    assert f"Bearer {MASK}" in retried[0]["error"]
    assert engine.runners["events"].failure is not None  # the broker was not there: logged with its URL
    assert any("127.0.0.1" in line["message"] for line in json_lines(captured) if line["level"] == "error")


def _plain(item: Any) -> Any:
    return {key: value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            for key, value in dataclasses.asdict(item).items()}
