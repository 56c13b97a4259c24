"""The demo deployment as an operator runs it: a real `crossdock run` process, killed and restarted.

The crash test is the promise operators care about most: SIGKILL in the middle of a run, start
again, and every order is delivered exactly once to its warehouse queue and to the ERP outbox.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WAREHOUSES = ("Dallas", "reno", "")


def web_order(number: int) -> bytes:
    warehouse = WAREHOUSES[number % len(WAREHOUSES)]
    order = {
        "number": str(number),
        "created_at": "2026-11-20T09:15:00Z",
        "currency": "USD",
        "fulfillment": {"warehouse": warehouse},
        "customer": {"id": f"C-{number}", "first_name": "Ana", "last_name": "Ruiz", "email": "ana@example.com"},
        "shipping_address": {"name": "Ana Ruiz", "address1": "12 Elm St", "city": "Austin",
                             "province_code": "TX", "zip": "73301", "country_code": "US"},
        "line_items": [{"sku": f"SKU-{number % 7}", "title": "Widget", "quantity": 1 + number % 3,
                        "unit": "EA", "price": "4.10"}],
    }
    return json.dumps(order).encode()


def deployment(tmp_path: Path, count: int) -> tuple[Path, Path]:
    routes = tmp_path / "routes"
    shutil.copytree(REPO / "routes", routes, ignore=shutil.ignore_patterns("fixtures"))
    data = tmp_path / "data"
    inbox = data / "inbox"
    inbox.mkdir(parents=True)
    for number in range(1, count + 1):
        (inbox / f"order-{number:05d}.json").write_bytes(web_order(10_000 + number))
    return routes, data


@dataclass
class Daemon:
    """A `crossdock run` process; its output goes to files, since a full pipe would block the daemon."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def wait(self, timeout: float) -> tuple[bytes, bytes]:
        self.process.wait(timeout=timeout)
        return self.out.read_bytes(), self.err.read_bytes()


def start(routes: Path, data: Path, *extra: str) -> Daemon:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    logs = data.parent / f"logs-{time.monotonic_ns()}"
    logs.mkdir()
    out, err = logs / "stdout", logs / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "crossdock.cli", "run", str(routes), "--data", str(data), *extra],
            stdout=stdout, stderr=stderr, env=env,
        )
    return Daemon(process, out, err)


def outbox(data: Path) -> list[Path]:
    folder = data / "outbox" / "erp"
    return sorted(p for p in folder.glob("*.json")) if folder.is_dir() else []


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def queued_orders(data: Path) -> list[str]:
    with sqlite3.connect(data / "queues.db") as db:
        rows = db.execute("SELECT body FROM queue_messages").fetchall()
    return [json.loads(body)["po_number"] for (body,) in rows]


def test_sigkill_mid_run_then_restart_loses_no_order_and_writes_none_twice(tmp_path: Path) -> None:
    count = 400
    routes, data = deployment(tmp_path, count)
    daemon = start(routes, data)
    try:
        assert wait_for(lambda: len(outbox(data)) >= 40), daemon.err.read_text()[-2000:]
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(timeout=10)
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
    written_before_restart = len(outbox(data))
    assert written_before_restart < count, "the run finished before the kill; raise `count`"

    finish = start(routes, data, "--once")
    out, err = finish.wait(timeout=300)
    assert finish.process.returncode == 0, err.decode()[-2000:]

    expected = {f"WEB-{10_000 + n}" for n in range(1, count + 1)}
    written = [json.loads(p.read_bytes())["po_number"] for p in outbox(data)]
    assert sorted(written) == sorted(expected)
    queued = queued_orders(data)
    assert len(queued) == count, "an order was queued twice or not at all"
    assert set(queued) == expected
    assert list((data / "inbox").glob("*.json")) == []
    assert len(list((data / "inbox" / "done").glob("*.json"))) == count
    assert b"dead-letter store: 0 entries" in out


def test_sigterm_drains_in_flight_messages_and_exits_zero(tmp_path: Path) -> None:
    count = 150
    routes, data = deployment(tmp_path, count)
    daemon = start(routes, data, "--drain-timeout", "20")
    try:
        assert wait_for(lambda: len(outbox(data)) >= 10)
        daemon.process.send_signal(signal.SIGTERM)
        out, err = daemon.wait(timeout=60)
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
    assert daemon.process.returncode == 0, err.decode()[-2000:]
    assert b"SIGTERM: draining" in err
    done = {p.name for p in (data / "inbox" / "done").glob("*.json")}
    waiting = {p.name for p in (data / "inbox").glob("*.json")}
    assert len(done) + len(waiting) == count, "a file vanished"
    delivered = {json.loads(p.read_bytes())["po_number"] for p in outbox(data)}
    assert len(delivered) >= len(done), "a file was acknowledged before its order was written"
    assert b"Web store orders" in out

    rest = start(routes, data, "--once")
    rest.wait(timeout=300)
    assert rest.process.returncode == 0
    assert len(outbox(data)) == count


def test_run_refuses_to_start_on_routes_that_do_not_lint(tmp_path: Path) -> None:
    routes = tmp_path / "routes"
    routes.mkdir()
    (routes / "r.route").write_text('route "r"\n  from file "nowhere"\n  read json\n  to file "x"\nend\n')
    result = subprocess.run([sys.executable, "-m", "crossdock.cli", "run", str(routes), "--once",
                             "--data", str(tmp_path / "data")], capture_output=True, timeout=60)
    assert result.returncode == 1
    assert b"NAME001" in result.stderr and b"refusing to start" in result.stderr
    assert not (tmp_path / "data").exists()


def test_log_level_warning_leaves_out_the_stages_of_delivered_messages(tmp_path: Path) -> None:
    routes, data = deployment(tmp_path, 3)
    (data / "inbox" / "broken.json").write_bytes(b'{"number": "1", ')  # dead-lettered: logged
    logged = {}
    for level in ("info", "warning"):
        run_data = tmp_path / level
        shutil.copytree(data, run_data)
        daemon = start(routes, run_data, "--once", "--log-format", "json", "--log-level", level)
        _, err = daemon.wait(timeout=120)
        assert daemon.process.returncode == 0, err.decode()[-2000:]
        lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
        logged[level] = {(line.get("event"), line["level"]) for line in lines if line.get("event")}
    assert ("received", "info") in logged["info"] and ("dead-lettered", "error") in logged["info"]
    assert ("dead-lettered", "error") in logged["warning"]
    assert not {level for _, level in logged["warning"]} & {"info", "debug"}
