"""examples/x12-850 over SFTP: Acme's drop and pickup folders live on a real OpenSSH server.

The example's routes are copied and their file connections to Acme replaced by one sftp connection,
as a deployment would: 850s are taken from the server, become Orders for the ERP, and the 997 is
uploaded back to Acme's folder on the same server.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anyio
import pytest
from servers.sshd import SshServer

from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.services import Services
from crossdock.formats.x12 import Mode, read

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "x12-850"
SAMPLE = (EXAMPLE / "routes" / "fixtures" / "acme-850.x12").read_bytes()
ROUTE = "Acme purchase orders to ERP"


def sftp_deployment(tmp_path: Path, server: SshServer, remote: Path) -> tuple[Path, Path, dict[str, str]]:
    """The example's routes with Acme's folders on `server` under `remote`; returns routes, data and env."""
    routes = tmp_path / "routes"
    shutil.copytree(EXAMPLE / "routes", routes)
    orders = routes / "acme-orders.route"
    text = orders.read_text()
    text = text.replace('  from file "acme-drop"\n', "\n".join([
        '  from sftp "acme-sftp"',
        f'    folder "{remote}/outbound/850"',
        '    files "*.x12"',
        "    check every 30s",
        f'    after success move to "{remote}/archive"',
        f'    after failure move to "{remote}/rejected"',
        "",
    ]))
    text = text.replace('acknowledge with 997 to file "acme-pickup"',
                        f'acknowledge with 997 to sftp "acme-sftp" folder "{remote}/inbound/997"')
    assert text.count('sftp "acme-sftp"') == 2  # both replacements happened
    orders.write_text(text)
    with (routes / "partners.route").open("a") as partners:
        partners.write("\n".join([
            "",
            'connection "acme-sftp" is sftp',
            '  host env "ACME_SFTP_HOST"',
            '  port env "ACME_SFTP_PORT"',
            f'  user "{server.user}"',
            '  key secret "ACME_SFTP_KEY"',
            '  known hosts "config/known_hosts"',
            "end",
            "",
        ]))
    data = tmp_path / "data"
    (data / "erp" / "acknowledgments").mkdir(parents=True)
    (data / "config").mkdir()
    shutil.copy(server.known_hosts, data / "config" / "known_hosts")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ACME_SFTP_KEY").write_text(server.client_key.read_text())  # the key text, as a secret
    env = {"ACME_SFTP_HOST": server.host, "ACME_SFTP_PORT": str(server.port),
           "CROSSDOCK_SECRETS_DIR": str(secrets)}
    return routes, data, env


async def run(routes: Path, data: Path, env: dict[str, str]) -> Engine:
    result = lint([routes], require_env=True, env=env)
    assert result.plan is not None and not result.errors, [str(d) for d in result.errors]
    async with embedded_stores(data) as stores:
        services = Services(stores=stores, data_dir=data, clock=ManualClock(), env=env,
                            partners=result.plan.partners)
        engine = Engine(result.plan, services)
        await engine.run(once=True, stop=anyio.Event())
    return engine


def segments(path: Path) -> list[list[str]]:
    return [s.split("*") for s in path.read_text().strip("~").split("~")]


async def test_850s_over_sftp_become_orders_and_997s_go_back(tmp_path: Path, sshd: SshServer) -> None:
    remote = sshd.new_folder()
    routes, data, env = sftp_deployment(tmp_path, sshd, remote)
    (remote / "outbound" / "850").mkdir(parents=True)
    (remote / "outbound" / "850" / "po-101.x12").write_bytes(SAMPLE)

    engine = await run(routes, data, env)

    stats = engine.stats.routes[ROUTE]
    assert (stats.received, stats.delivered, stats.dead_lettered) == (1, 1, 0)
    order = json.loads((data / "erp" / "orders" / "4500012345.json").read_text())
    assert order == json.loads((routes / "fixtures" / "acme-850.order.json").read_text())
    [ack] = sorted((remote / "inbound" / "997").iterdir())
    assert ack.name.startswith("997-") and ack.suffix == ".x12"
    assert not read(ack.read_bytes(), mode=Mode.STRICT).errors
    parts = segments(ack)
    assert ["AK1", "PO", "101"] in parts and ["AK2", "850", "0001"] in parts and ["AK5", "A"] in parts
    assert (remote / "archive" / "po-101.x12").read_bytes() == SAMPLE
    assert list((remote / "outbound" / "850").iterdir()) == []

    again = await run(routes, data, env)  # nothing left to take: the file was moved, not left behind
    assert again.stats.routes[ROUTE].received == 0


async def test_a_broken_850_over_sftp_is_rejected_and_moved_to_rejected(tmp_path: Path, sshd: SshServer) -> None:
    remote = sshd.new_folder()
    routes, data, env = sftp_deployment(tmp_path, sshd, remote)
    (remote / "outbound" / "850").mkdir(parents=True)
    broken = SAMPLE.replace(b"SE*23*0001~", b"SE*22*0001~")
    (remote / "outbound" / "850" / "po-bad.x12").write_bytes(broken)

    engine = await run(routes, data, env)

    assert engine.stats.routes[ROUTE].dead_lettered == 1
    [ack] = sorted((remote / "inbound" / "997").iterdir())
    assert ["AK5", "R", "4"] in segments(ack)
    assert (remote / "rejected" / "po-bad.x12").read_bytes() == broken
    assert not (data / "erp" / "orders").exists() or list((data / "erp" / "orders").iterdir()) == []
