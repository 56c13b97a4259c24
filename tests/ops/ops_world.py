"""What the logs, metrics, traces and admin tests share: route projects in a temporary folder, an
engine run on them, the admin app served on a free loopback port, and scrapes of its /metrics."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import anyio
from prometheus_client.parser import text_string_to_metric_families

from crossdock.dsl.lint import lint
from crossdock.engine.clock import Clock, ManualClock
from crossdock.engine.engine import Engine
from crossdock.engine.services import Services
from crossdock.engine.stores.base import Stores
from crossdock.ops.admin import AdminApp, AdminCredentials, serving

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def write_project(tmp_path: Path, text: str, files: Mapping[str, Mapping[str, bytes]] | None = None) -> Path:
    """`text` as routes/test.route, and `files` ({folder: {name: bytes}}) under data/."""
    routes = tmp_path / "routes"
    routes.mkdir(exist_ok=True)
    (routes / "test.route").write_text(text)
    for folder, named in (files or {}).items():
        target = tmp_path / "data" / folder
        target.mkdir(parents=True, exist_ok=True)
        for name, body in named.items():
            (target / name).write_bytes(body)
    return routes


def engine_for(tmp_path: Path, routes: Path, stores: Stores, *, clock: Clock | None = None,
               env: Mapping[str, str] | None = None) -> Engine:
    result = lint([routes])
    assert not result.errors, [str(d) for d in result.errors]
    assert result.plan is not None
    services = Services(stores=stores, data_dir=tmp_path / "data", clock=clock or ManualClock(),
                        rng=random.Random(7), env=dict(env or {}), partners=result.plan.partners)
    return Engine(result.plan, services)


async def run_once(engine: Engine) -> None:
    await engine.run(once=True, stop=anyio.Event())


@asynccontextmanager
async def admin_of(engine: Engine, credentials: AdminCredentials | None = None,
                   stop: anyio.Event | None = None) -> AsyncIterator[tuple[AdminApp, str]]:
    """The engine's admin app served on a free loopback port; yields it and its base URL."""
    app = AdminApp(engine, credentials or AdminCredentials(), stopping=stop.is_set if stop else lambda: False)
    async with serving(app.app, "127.0.0.1:0") as (host, port):
        yield app, f"http://{host}:{port}"


async def scrape(url: str) -> Samples:
    """GET {url}/metrics, parsed: {(sample name, labels): value}."""
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as answer:
        assert answer.status == 200, await answer.text()
        text = await answer.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels (KeyError when it is not exposed)."""
    return samples[(name, frozenset(labels.items()))]


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}
