"""Benchmark: REST intake through crossdock against a bare Starlette app that only validates JSON.

Every server runs on uvicorn (httptools, uvloop, access log off) in this process, one after the other;
the load comes from a separate client process (aiohttp on uvloop), so the client's CPU is not the
server's. The same web order (667 bytes of JSON) is POSTed `--requests` times, `--concurrency` at a
time, after a warm-up of 500; each side runs `--rounds` times, alternated, and medians are printed.

- bare: Starlette reads the body, checks it is JSON, answers 202 with a correlation id. Nothing is
  stored: the ceiling of the HTTP stack itself.
- crossdock: `from http post "/v1/orders"` with an API key and a rate limit that never bites: the body
  is size-checked while read, checked for JSON, stored in the SQLite inbox (synchronous=FULL, commits
  grouped) and only then answered 202. The same process runs the route meanwhile, which reads the
  stored requests, and either puts each on an embedded durable queue (one more fsync'd commit each)
  or decodes and drops it (`keep only when false`: what intake costs with a route that does little).

Printed: requests/s and client-side p50/p99 latency (send to the last byte of the answer) of each,
the ratios to bare, and how many stored requests the route had not finished when the load ended.

    .venv/bin/python bench/rest_intake.py [--requests 5000] [--concurrency 50] [--rounds 3] [--data DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crossdock.dsl.lint import lint
from crossdock.engine import heap
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.runtime import Services

REPO = Path(__file__).resolve().parents[1]
BARE = "bare Starlette (validate JSON, 202)"
API_KEY = "bench-key"
ROUTES = """
connection "api" is http
  listen "127.0.0.1:PORT"
  api keys env "BENCH_KEYS"
  rate limit 1000000
end

connection "warehouse" is queue
  database "queues.db"
end

route "Order intake"
  from http "api" post "/v1/orders"
  STEPS
  dead letter to store
end
"""


# ---- the client (run in its own process) --------------------------------------------------------


async def _load(url: str, body: bytes, requests: int, concurrency: int) -> dict[str, Any]:
    import aiohttp

    headers = {"Content-Type": "application/json", "X-Api-Key": API_KEY}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = requests

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as answer:
                await answer.read()
            latencies.append(time.perf_counter() - started)
            statuses[answer.status] = statuses.get(answer.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm = remaining = min(500, requests)
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        latencies.clear()
        statuses.clear()
        remaining = requests
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": requests, "warm_up": warm, "seconds": elapsed, "per_second": requests / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "statuses": statuses,
    }


def client_main(url: str, requests: int, concurrency: int) -> None:
    import uvloop

    body = (REPO / "examples" / "webstore-orders" / "order-1001.json").read_bytes()
    result = uvloop.run(_load(url, body, requests, concurrency))
    print(json.dumps(result))


async def _run_client(url: str, requests: int, concurrency: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--client", url, "--requests", str(requests),
               "--concurrency", str(concurrency)]
    done = await anyio.run_process(command, stderr=subprocess.PIPE)
    result = json.loads(done.stdout)
    if set(result["statuses"]) != {"202"}:  # JSON keys are text
        raise SystemExit(f"unexpected answers: {result['statuses']}")
    return result


# ---- the servers --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _bare_intake(request: Request) -> Response:
    body = await request.body()
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return Response(b'{"error": "not JSON"}', status_code=400, media_type="application/json")
    answer = orjson.dumps({"correlation_id": uuid.uuid4().hex, "status": "accepted"})
    return Response(answer, status_code=202, media_type="application/json")


async def bare(requests: int, concurrency: int) -> dict[str, Any]:
    """The baseline: Starlette on uvicorn, validate JSON, answer 202."""
    port = _free_port()
    app = Starlette(routes=[Route("/v1/orders", _bare_intake, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http="httptools", ws="none", lifespan="off",
                            access_log=False, log_config=None, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        await anyio.sleep(0.01)
    try:
        return await _run_client(f"http://127.0.0.1:{port}/v1/orders", requests, concurrency)
    finally:
        server.should_exit = True
        await task


async def crossdock(requests: int, concurrency: int, data: Path, steps: str) -> dict[str, Any]:
    """The same load against a crossdock engine running the intake route with `steps` after its source."""
    port = _free_port()
    routes = data / "routes"
    routes.mkdir(parents=True)
    (routes / "intake.route").write_text(ROUTES.replace("PORT", str(port)).replace("STEPS", steps))
    result = lint([routes])
    assert result.plan is not None and not result.errors, [str(d) for d in result.errors]
    async with embedded_stores(data) as stores:
        engine = Engine(result.plan, Services(stores=stores, data_dir=data, env={"BENCH_KEYS": API_KEY}))
        stats = engine.stats.route("Order intake")
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: engine.run(once=False, stop=stop))
            while True:  # until the server answers (the route has started)
                try:
                    await (await anyio.connect_tcp("127.0.0.1", port)).aclose()
                    break
                except OSError:
                    await anyio.sleep(0.01)
            measured = await _run_client(f"http://127.0.0.1:{port}/v1/orders", requests, concurrency)
            total = requests + measured["warm_up"]
            # Stored but not yet through the route when the load ended: the inbox absorbs what the route
            # cannot keep up with, which the intake figures do not show.
            measured["backlog_at_end"] = total - stats.acked
            while stats.acked < total:
                await anyio.sleep(0.05)
            stop.set()
    return measured


VARIANTS = {
    "crossdock, route to a durable queue": 'read json\n  to queue "warehouse" queue "orders"',
    "crossdock, route decodes and drops": 'read json\n  keep only when false\n  to queue "warehouse" queue "orders"',
}


async def bench(requests: int, concurrency: int, rounds: int, data: Path) -> None:
    print(f"REST intake: {requests} POSTs of a {len(_sample()):,}-byte JSON order, {concurrency} at a time, client "
          f"in its own process, {rounds} round(s), medians shown; data in {data}")
    results: dict[str, list[dict[str, Any]]] = {BARE: [], **{name: [] for name in VARIANTS}}
    for number in range(rounds):
        results[BARE].append(await bare(requests, concurrency))
        for index, (name, steps) in enumerate(VARIANTS.items()):
            results[name].append(await crossdock(requests, concurrency, data / f"run-{number}-{index}", steps))
    medians = {name: {key: statistics.median(run[key] for run in runs)
                      for key in ("per_second", "p50_ms", "p99_ms", "backlog_at_end") if key in runs[0]}
               for name, runs in results.items()}
    base = medians[BARE]
    for name, figures in medians.items():
        line = (f"{name:38}: {figures['per_second']:7,.0f} req/s  p50 {figures['p50_ms']:6.1f} ms  "
                f"p99 {figures['p99_ms']:6.1f} ms")
        if name != BARE:
            line += (f"  | x bare: {figures['per_second'] / base['per_second']:.2f} throughput, "
                     f"{figures['p50_ms'] / base['p50_ms']:.1f} p50, {figures['p99_ms'] / base['p99_ms']:.1f} p99"
                     f"  | route backlog at end {figures['backlog_at_end']:.0f}")
        print(line)


def _sample() -> bytes:
    return (REPO / "examples" / "webstore-orders" / "order-1001.json").read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side, alternated; medians are shown")
    parser.add_argument("--data", type=Path, help="where crossdock keeps its files (default: a temporary folder)")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # internal: run as the load generator
    args = parser.parse_args()
    heap.settle()  # the process set up as `crossdock run` sets it up, for both sides
    if args.client:
        client_main(args.client, args.requests, args.concurrency)
        return
    if args.data is not None:
        anyio.run(bench, args.requests, args.concurrency, args.rounds, args.data, backend_options={"use_uvloop": True})
        return
    with tempfile.TemporaryDirectory(prefix="crossdock-bench-") as folder:
        anyio.run(bench, args.requests, args.concurrency, args.rounds, Path(folder),
                  backend_options={"use_uvloop": True})


if __name__ == "__main__":
    main()
