"""Benchmark: the sftp connector moving many small files over a real OpenSSH server.

Downloads: a source takes N small files (an 850 each) with `parallel downloads` 1 (one file at a time)
and with several in flight. Uploads: a sink sends the same N files one at a time and with several
sends at once over its one connection (as a route's workers do). Printed: files per second for each
(the best of `--repeat` runs, so that other load on the machine counts least) and the ratio against
one at a time. The server is the private sshd of tests/servers/sshd.py; with `--latency MS` the
connection goes through a local proxy that delays every chunk by MS milliseconds each way, as a
partner's server across the internet would (loopback alone measures CPU, not round trips).

    .venv/bin/python bench/sftp_transfer.py [--files N] [--latency MS] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossdock.connectors import sftp
from crossdock.connectors.base import ConnectorContext
from crossdock.engine.clock import ManualClock
from crossdock.engine.message import Message

REPO = Path(__file__).resolve().parents[1]
SAMPLE = (REPO / "examples" / "x12-850" / "routes" / "fixtures" / "acme-850.x12").read_bytes()
IN_FLIGHT = (1, 4, 8, 16)


@dataclass(frozen=True)
class Target:
    """Where the connector connects: the server itself, or the delaying proxy in front of it."""

    server: Any
    port: int
    known_hosts: Path


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy bytes, each chunk delivered `delay` seconds after it arrived, in order."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await chunks.get()
            if not data:
                writer.close()
                return
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(data)
            await writer.drain()

    delivery = asyncio.ensure_future(deliver())
    while data := await reader.read(65536):
        chunks.put_nowait((loop.time() + delay, data))
    chunks.put_nowait((0.0, b""))
    await delivery


async def delaying_proxy(port: int, delay: float) -> tuple[asyncio.Server, set[asyncio.Task[Any]]]:
    """A proxy to `port` adding `delay` each way, and the set of its connections' tasks."""
    connections: set[asyncio.Task[Any]] = set()

    async def pipes(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(_pipe(client_reader, server_writer, delay), _pipe(server_reader, client_writer, delay),
                             return_exceptions=True)

    def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(pipes(client_reader, client_writer))
        connections.add(task)
        task.add_done_callback(connections.discard)

    return await asyncio.start_server(handle, "127.0.0.1", 0), connections


def connector_options(target: Target, folder: Path, **values: Any) -> dict[str, Any]:
    options = {spec.key: spec.default for spec in sftp.SPEC.options}
    options.update(host="127.0.0.1", port=target.port, user=target.server.user, key=str(target.server.client_key),
                   known_hosts=str(target.known_hosts), folder=str(folder), settle=0.0, **values)
    return options


async def download(target: Target, folder: Path, data: Path, parallel: int, count: int) -> float:
    context = ConnectorContext(owner="bench", data_dir=data, clock=ManualClock())
    async with sftp.open_source(connector_options(target, folder, parallel_downloads=parallel), context) as source:
        await source.session.client()  # connected before the clock starts, as in a running route
        start = time.perf_counter()
        taken = [inbound async for inbound in source.receive(once=True)]
        elapsed = time.perf_counter() - start
    assert len(taken) == count and all(inbound.body == SAMPLE for inbound in taken)
    return count / elapsed


async def upload(target: Target, folder: Path, data: Path, at_once: int, count: int) -> float:
    context = ConnectorContext(owner="bench", data_dir=data, clock=ManualClock())
    limiter = asyncio.Semaphore(at_once)

    async def send(sink: sftp.SftpSink, number: int) -> None:
        async with limiter:
            await sink.send(Message(body=SAMPLE, route="bench", message_id=f"m{number}", correlation_id="c",
                                    meta={"file_name": f"po-{number:06d}.x12"}))

    async with sftp.open_sink(connector_options(target, folder), context) as sink:
        await sink.session.client()
        start = time.perf_counter()
        await asyncio.gather(*(send(sink, n) for n in range(count)))
        elapsed = time.perf_counter() - start
    assert len(list(folder.iterdir())) == count
    return count / elapsed


async def bench(server: Any, work: Path, count: int, latency_ms: float, repeat: int) -> None:
    target = Target(server, server.port, server.known_hosts)
    proxy, connections = None, set()
    if latency_ms:
        proxy, connections = await delaying_proxy(server.port, latency_ms / 1000)
        port = proxy.sockets[0].getsockname()[1]
        known_hosts = work / "proxy_known_hosts"
        known_hosts.write_text(server.known_hosts.read_text().replace(f":{server.port} ", f":{port} "))
        target = Target(server, port, known_hosts)
    print(f"{count} files of {len(SAMPLE)} bytes over sftp, OpenSSH on loopback"
          + (f" behind {latency_ms:g} ms each way" if latency_ms else "") + f"; best of {repeat}")
    runs = 0

    async def best(measure: Any) -> float:
        nonlocal runs
        rates = []
        for _ in range(repeat):
            runs += 1
            rates.append(await measure(work / f"run-{runs}"))
        return max(rates)

    def filled() -> Path:
        folder = server.new_folder()
        for number in range(count):
            (folder / f"po-{number:06d}.x12").write_bytes(SAMPLE)
        return folder

    baseline = 0.0
    for parallel in IN_FLIGHT:
        rate = await best(lambda data, p=parallel: download(target, filled(), data, p, count))
        baseline = baseline or rate
        print(f"  download, parallel downloads {parallel:>2}: {rate:8.0f} files/s  x{rate / baseline:.2f}")
    baseline = 0.0
    for at_once in IN_FLIGHT:
        rate = await best(lambda data, n=at_once: upload(target, server.new_folder(), data, n, count))
        baseline = baseline or rate
        print(f"  upload,   {at_once:>2} sends at once:       {rate:8.0f} files/s  x{rate / baseline:.2f}")
    if proxy is not None:
        proxy.close()
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.0, help="milliseconds added each way")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))  # the test suite's private sshd
    from servers.sshd import running_sshd

    with tempfile.TemporaryDirectory() as tmp, running_sshd(Path(tmp)) as server:
        asyncio.run(bench(server, Path(tmp), args.files, args.latency, args.repeat))


if __name__ == "__main__":
    main()
