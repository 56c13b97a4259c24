"""The admin port: /health and /ready through a route's life, open reads and authenticated writes on
mounted apps, what `crossdock run --admin` serves (the console at /), and a real daemon scraped."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from ops_world import admin_of, engine_for, scrape, value, write_project
from servers.ports import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from crossdock.engine.clock import SystemClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.errors import PermanentError
from crossdock.ops.admin import AdminCredentials, operations, serving
from crossdock.ops.logging import SECRETS

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]

ROUTES = """
connection "inbox" is file
  folder "inbox"
  settle 0s
  check every 100ms
end

connection "nowhere" is amqp
  url env "AMQP_URL"
end

route "files"
  from file "inbox"
  to file "inbox"
    folder "out"
  dead letter to store
end
"""

BROKEN = """
route "events"
  from file "inbox"
  to amqp "nowhere" queue "events"
  dead letter to store
end
"""


async def get(url: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    return await request("GET", url, **kwargs)


async def request(method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    async with aiohttp.ClientSession() as client, client.request(method, url, **kwargs) as answer:
        body = await answer.json() if answer.content_type == "application/json" else await answer.text()
        return answer.status, dict(answer.headers), body


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def _until_ready(url: str) -> None:
    with anyio.fail_after(10):
        while (await get(url + "/ready"))[0] != 200:
            await anyio.sleep(0.01)


async def test_ready_follows_the_routes_from_start_to_stop_and_health_stays_up(tmp_path: Path) -> None:
    routes = write_project(tmp_path, ROUTES)
    async with embedded_stores(tmp_path / "data") as stores:
        engine = engine_for(tmp_path, routes, stores, clock=SystemClock(), env={"AMQP_URL": "amqp://127.0.0.1:1/"})
        stop = anyio.Event()
        async with admin_of(engine, stop=stop) as (_, url):
            before = await get(url + "/ready")
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: engine.run(once=False, stop=stop, drain_timeout=1))
                await _until_ready(url)
                running = await get(url + "/ready")
                stop.set()
                stopping = await get(url + "/ready")
            health = await get(url + "/health")
    assert (before[0], before[2]) == (503, {"status": "not ready", "routes": {"files": "not running"}})
    assert (running[0], running[2]) == (200, {"status": "ready", "routes": {"files": "running"}})
    assert (stopping[0], stopping[2]["status"]) == (503, "stopping")
    assert (health[0], health[2]) == (200, {"status": "ok", "routes": {"files": "not running"}})


@pytest.mark.parametrize(("url", "state"), [
    ("amqp://127.0.0.1:{port}/", "waiting"),  # no broker there (yet): tried again with backoff
    ("http://127.0.0.1:{port}/", "failed"),  # a URL that can never work (AMQ009)
])
async def test_a_route_that_cannot_start_keeps_the_daemon_not_ready_but_healthy(
        tmp_path: Path, url: str, state: str) -> None:
    routes = write_project(tmp_path, ROUTES + BROKEN)
    async with embedded_stores(tmp_path / "data") as stores:
        engine = engine_for(tmp_path, routes, stores, clock=SystemClock(),
                            env={"AMQP_URL": url.format(port=free_port())})
        stop = anyio.Event()
        events = engine.runners["events"]
        async with admin_of(engine, stop=stop) as (_, admin), anyio.create_task_group() as group:
            group.start_soon(lambda: engine.run(once=False, stop=stop, drain_timeout=1))
            with anyio.fail_after(10):
                while (events.failure or events.waiting) is None or "files" not in engine.telemetry.metrics.running:
                    await anyio.sleep(0.01)
            ready, health = await get(admin + "/ready"), await get(admin + "/health")
            stop.set()
    states = {"files": "running", "events": state}
    assert (ready[0], ready[2]) == (503, {"status": "not ready", "routes": states})
    assert (health[0], health[2]) == (200, {"status": "ok", "routes": states})
    assert events.waiting is None  # stopped: no longer waiting for anything


def mounted_app() -> Starlette:
    async def action(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{request.method} done")

    return Starlette(routes=[Route("/action", action, methods=["GET", "POST"]),
                             Route("/metrics", action, methods=["GET", "POST"])])


async def test_reads_are_open_and_writes_need_the_admin_credentials(tmp_path: Path) -> None:
    routes = write_project(tmp_path, ROUTES)
    credentials = AdminCredentials(username="ops", password="pw-admin-4242")
    async with embedded_stores(tmp_path / "data") as stores:
        engine = engine_for(tmp_path, routes, stores, env={"AMQP_URL": "amqp://127.0.0.1:1/"})
        async with admin_of(engine, credentials) as (app, url):
            app.mount("/", mounted_app())
            read = await get(url + "/action")
            anonymous = await request("POST", url + "/action")
            wrong = await request("POST", url + "/action", headers=basic("ops", "guess"))
            malformed = await request("POST", url + "/action", headers={"Authorization": "Basic %%%"})
            right = await request("POST", url + "/action", headers=basic("ops", "pw-admin-4242"))
            metrics = await get(url + "/metrics")  # the admin's own path wins over the mounted app's
            metrics_post = await request("POST", url + "/metrics", headers=basic("ops", "pw-admin-4242"))
    assert (read[0], read[2]) == (200, "GET done")
    for refused in (anonymous, wrong, malformed):
        assert (refused[0], refused[2]["error"]) == (401, "ADM401")
        assert refused[1]["WWW-Authenticate"] == 'Basic realm="crossdock admin", charset="UTF-8"'
    assert (right[0], right[2]) == (200, "POST done")
    assert metrics[0] == 200 and "crossdock_dead_letters" in metrics[2]
    assert (metrics_post[0], metrics_post[2]["error"], metrics_post[1]["Allow"]) == (405, "ADM405", "GET, HEAD")


async def test_without_a_password_every_write_is_refused(tmp_path: Path) -> None:
    routes = write_project(tmp_path, ROUTES)
    async with embedded_stores(tmp_path / "data") as stores:
        engine = engine_for(tmp_path, routes, stores, env={"AMQP_URL": "amqp://127.0.0.1:1/"})
        async with admin_of(engine, AdminCredentials(password=None)) as (app, url):
            app.mount("/", mounted_app())
            refused = await request("POST", url + "/action", headers=basic("admin", ""))
            read = await get(url + "/action")
    assert (refused[0], refused[2]["error"]) == (403, "ADM403")
    assert read[0] == 200


def test_the_password_comes_from_the_secrets_folder_or_the_environment(tmp_path: Path) -> None:
    (tmp_path / "CROSSDOCK_ADMIN_PASSWORD").write_text("pw-from-file-5150\n")
    from_file = AdminCredentials.from_settings("ops", {"CROSSDOCK_SECRETS_DIR": str(tmp_path),
                                                       "CROSSDOCK_ADMIN_PASSWORD": "pw-from-env-0"})
    from_env = AdminCredentials.from_settings(env={"CROSSDOCK_ADMIN_PASSWORD": "pw-from-env-7331"})
    unset = AdminCredentials.from_settings(env={"CROSSDOCK_ADMIN_PASSWORD": ""})
    assert (from_file.username, from_file.password) == ("ops", "pw-from-file-5150")
    assert (from_env.username, from_env.password, from_env.configured) == ("admin", "pw-from-env-7331", True)
    assert not unset.configured
    assert "pw-from-file-5150" in SECRETS and "pw-from-env-7331" in SECRETS  # never logged
    assert "pw-from" not in repr(from_file)


async def test_operations_serves_the_console_at_the_root_and_turns_tracing_on_from_the_environment(
        tmp_path: Path) -> None:
    routes = write_project(tmp_path, ROUTES)
    port = free_port()
    async with embedded_stores(tmp_path / "data") as stores:
        engine = engine_for(tmp_path, routes, stores, env={"AMQP_URL": "amqp://127.0.0.1:1/"})
        async with operations(engine, admin=f"127.0.0.1:{port}",
                              env={"OTEL_TRACES_EXPORTER": "console", "CROSSDOCK_ADMIN_PASSWORD": "pw-ops-1"}) as app:
            assert app is not None and app.credentials.configured
            traced = engine.telemetry.tracing is not None
            console = await get(f"http://127.0.0.1:{port}/")
            health = await get(f"http://127.0.0.1:{port}/health")
        assert engine.telemetry.tracing is None
        async with operations(engine, env={}) as nothing:
            assert nothing is None and engine.telemetry.tracing is None
    assert traced
    assert console[0] == 200 and "<html" in console[2].lower()
    assert health[0] == 200


async def test_an_address_that_cannot_be_listened_on_is_adm001(tmp_path: Path) -> None:
    async with serving(mounted_app(), "127.0.0.1:0") as (_, port):
        with pytest.raises(PermanentError) as taken:
            async with serving(mounted_app(), f"127.0.0.1:{port}"):
                pass
    with pytest.raises(PermanentError) as malformed:
        async with serving(mounted_app(), "localhost"):
            pass
    assert (taken.value.code, malformed.value.code) == ("ADM001", "ADM001")


def test_crossdock_run_with_admin_serves_metrics_of_the_running_daemon(tmp_path: Path) -> None:
    routes = tmp_path / "routes"
    routes.mkdir()
    (routes / "files.route").write_text(ROUTES.replace('url env "AMQP_URL"', 'url "amqp://127.0.0.1:1/"'))
    inbox = tmp_path / "data" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "a.json").write_text("{}")
    port = free_port()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "crossdock.cli", "run", str(routes), "--data", str(tmp_path / "data"),
         "--admin", f"127.0.0.1:{port}", "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        samples = anyio.run(_scrape_when_delivered, f"http://127.0.0.1:{port}")
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, errors = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, errors.decode()
    labels = {"route": "files", "step": 'to file "inbox"'}
    assert value(samples, "crossdock_messages_delivered_total", **labels) == 1
    assert value(samples, "crossdock_route_up", route="files") == 1
    logged = [json.loads(line) for line in errors.decode().splitlines() if line.startswith("{")]
    assert "delivered" in [line.get("event") for line in logged]


async def _scrape_when_delivered(url: str) -> Any:
    deadline = time.monotonic() + 30  # a guard against a daemon that never comes up, not a timing
    while True:
        try:
            samples = await scrape(url)
        except aiohttp.ClientConnectionError:
            samples = None
        if samples is not None and samples.get(("crossdock_messages_delivered_total", frozenset(
                {"route": "files", "step": 'to file "inbox"'}.items()))) == 1:
            return samples
        assert time.monotonic() < deadline, "the daemon never delivered the file"
        await anyio.sleep(0.05)


def test_every_runner_of_an_engine_reports_to_its_telemetry(tmp_path: Path) -> None:
    routes = write_project(tmp_path, ROUTES)

    async def build() -> Engine:
        async with embedded_stores(tmp_path / "data") as stores:
            return engine_for(tmp_path, routes, stores, env={"AMQP_URL": "amqp://127.0.0.1:1/"})

    engine = anyio.run(build)
    assert engine.services.observer is engine.telemetry
    assert all(runner.observer is engine.telemetry for runner in engine.runners.values())
