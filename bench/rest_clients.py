"""Benchmark: aiohttp against httpx as the REST connector's client, on the same loopback server.

Both clients POST the same small JSON order, a bounded number of times, with the same number of
requests in flight, to one aiohttp.web server in a child process (so that the CPU time measured is the
client's alone). Each client gets a warm-up, then several rounds; the best round is reported. Printed:
requests per second and client CPU milliseconds per request for each, and httpx's figures as a ratio
of aiohttp's (the baseline, the client the connector uses).

httpx needs `sniffio` importable, or it pays about 0.5 ms per request finding out which event loop
runs it; both are in the `bench` extra (`pip install -e .[bench]`).

    .venv/bin/python bench/rest_clients.py [--requests N] [--concurrency C] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection

import aiohttp
import httpx
from aiohttp import web

ORDER = (b'{"po_number": "PO-1001", "order_date": "2026-11-01", "currency": "USD", "lines": ['
         + b",".join(b'{"sku": "A-%d", "quantity": "2", "unit": "each", "amount": "19.90"}' % n for n in range(8))
         + b"]}")
CREATED = b'{"status": "created"}'

Send = Callable[[], Awaitable[int]]


def serve(port_out: Connection) -> None:
    """The child process: an aiohttp.web server answering 201 to every POST /orders, until killed."""

    async def created(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=201, body=CREATED, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/orders", created)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_out.send(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


@dataclass(frozen=True)
class Result:
    """One client's best round."""

    client: str
    requests_per_second: float
    cpu_ms_per_request: float


async def rounds(send: Send, requests: int, concurrency: int, count: int) -> tuple[float, float]:
    """(requests per second, client CPU ms per request) of the best of `count` rounds."""
    best = (0.0, float("inf"))
    for _ in range(count):
        pending = iter(range(requests))  # shared: the workers together send `requests`, no more

        async def worker(pending: Iterator[int] = pending) -> None:
            for _ in pending:
                status = await send()
                if status != 201:
                    raise RuntimeError(f"unexpected status {status}")

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if requests / wall > best[0]:
            best = (requests / wall, cpu * 1000 / requests)
    return best


async def with_aiohttp(url: str, args: argparse.Namespace) -> Result:
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def send() -> int:
            async with session.post(url, data=ORDER, headers={"Content-Type": "application/json"}) as response:
                await response.read()
                return response.status

        await rounds(send, args.warmup, args.concurrency, 1)
        rate, cpu = await rounds(send, args.requests, args.concurrency, args.rounds)
    return Result(f"aiohttp {aiohttp.__version__}", rate, cpu)


async def with_httpx(url: str, args: argparse.Namespace) -> Result:
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        async def send() -> int:
            response = await client.post(url, content=ORDER, headers={"Content-Type": "application/json"})
            return response.status_code

        await rounds(send, args.warmup, args.concurrency, 1)
        rate, cpu = await rounds(send, args.requests, args.concurrency, args.rounds)
    return Result(f"httpx {httpx.__version__}", rate, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per round (default 5000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per client; the best counts (default 3)")
    parser.add_argument("--warmup", type=int, default=500, help="requests before the rounds (default 500)")
    args = parser.parse_args()

    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(send,), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{receive.recv()}/orders"
        baseline = asyncio.run(with_aiohttp(url, args))
        other = asyncio.run(with_httpx(url, args))
    finally:
        server.terminate()
        server.join()

    sniffio = "installed" if importlib.util.find_spec("sniffio") else "MISSING (httpx pays ~0.5 ms per request)"
    print(f"{args.requests} POSTs of {len(ORDER)} bytes per round, {args.concurrency} in flight, best of "
          f"{args.rounds} rounds; loopback aiohttp.web server in a child process; sniffio {sniffio}")
    print(f"{'client':<16} {'req/s':>9} {'client CPU ms/req':>18}")
    for result in (baseline, other):
        print(f"{result.client:<16} {result.requests_per_second:>9.0f} {result.cpu_ms_per_request:>18.3f}")
    print(f"httpx / aiohttp: {other.requests_per_second / baseline.requests_per_second:.2f}x the throughput, "
          f"{other.cpu_ms_per_request / baseline.cpu_ms_per_request:.2f}x the CPU per request")


if __name__ == "__main__":
    main()
