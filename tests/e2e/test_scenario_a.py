"""Scenario (a), examples/edi-850-sftp-erp: a trading partner's 850s over SFTP become canonical Orders
posted to the ERP's REST API, with a 997 back to the partner, retries on 503 and refused orders
dead-lettered to the store and to an AMQP queue.

Everything is real except the ERP: the example's route files as they are (no text replaced), a private
OpenSSH server holding Acme's folders, a private RabbitMQ node (a virtual host of its own per test) and
an HTTP stand-in for the ERP that records every request and answers what the test tells it to. The
route files read every host, port, user, folder and key from the environment and the secrets folder,
which is how the test points them at these servers. A ManualClock stands in for time, so a retry's
wait is recorded instead of slept.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import aio_pika
import anyio
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from servers.erp_standin import Answer, ErpStandIn
from servers.sshd import SshServer

from crossdock.cli import main as cli_main
from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.services import Services
from crossdock.engine.stores.base import DeadLetter
from crossdock.formats.x12 import Mode, read

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "edi-850-sftp-erp"
ROUTES = EXAMPLE / "routes"
SAMPLE = (ROUTES / "fixtures" / "acme-850.x12").read_bytes()
GOLDEN = json.loads((ROUTES / "fixtures" / "acme-850.order.json").read_text())
ROUTE = "Acme 850s to the ERP"
TOKEN = "erp-token-5c1d"
DLQ = "erp.orders.dlq"


class Acme:
    """Acme's side: its folders on the SSH server, and what a deployment sets for the route files."""

    def __init__(self, tmp_path: Path, server: SshServer, erp: ErpStandIn, amqp_url: str) -> None:
        self.remote = server.new_folder()
        self.outbound = self.remote / "outbound" / "850"  # where Acme puts its 850s
        self.inbound = self.remote / "inbound" / "997"  # where Acme picks up our 997s
        self.outbound.mkdir(parents=True)
        self.data = tmp_path / "data"
        secrets = tmp_path / "secrets"
        secrets.mkdir()
        (secrets / "ACME_SFTP_KEY").write_text(server.client_key.read_text())
        (secrets / "ERP_TOKEN").write_text(TOKEN + "\n")
        self.env = {
            "ACME_SFTP_HOST": server.host, "ACME_SFTP_PORT": str(server.port), "ACME_SFTP_USER": server.user,
            "ACME_SFTP_KNOWN_HOSTS": str(server.known_hosts),
            "ACME_850_FOLDER": str(self.outbound), "ACME_997_FOLDER": str(self.inbound),
            "ERP_URL": erp.base_url, "AMQP_URL": amqp_url, "CROSSDOCK_SECRETS_DIR": str(secrets),
        }
        self.clock = ManualClock()

    def upload(self, name: str, body: bytes = SAMPLE) -> None:
        (self.outbound / name).write_bytes(body)

    async def run(self) -> tuple[Engine, list[DeadLetter]]:
        """`crossdock run --once` on the example's route files; the engine and the dead-letter store."""
        result = lint([ROUTES], require_env=True, env=self.env)
        assert result.plan is not None and not result.errors, [str(d) for d in result.errors]
        async with embedded_stores(self.data) as stores:
            services = Services(stores=stores, data_dir=self.data, clock=self.clock, env=self.env,
                                rng=random.Random(5), partners=result.plan.partners)
            engine = Engine(result.plan, services)
            with anyio.fail_after(60):
                await engine.run(once=True, stop=anyio.Event())
            letters = await stores.dead_letters.list(limit=10)
        assert engine.runners[ROUTE].failure is None
        return engine, letters

    def acks(self) -> list[list[list[str]]]:
        """Every 997 uploaded to Acme, as segments, each one read strictly first."""
        found = []
        for path in sorted(self.inbound.iterdir()):
            assert path.name.startswith("997-") and path.suffix == ".x12"
            assert not read(path.read_bytes(), mode=Mode.STRICT).errors
            found.append([s.split("*") for s in path.read_text().strip("~").split("~")])
        return found


@pytest.fixture
def acme(tmp_path: Path, sshd: SshServer, erp: ErpStandIn, amqp_url: str) -> Acme:
    return Acme(tmp_path, sshd, erp, amqp_url)


async def take_all(channel: AbstractChannel, queue: str) -> list[AbstractIncomingMessage]:
    declared = await channel.declare_queue(queue, passive=True)
    taken = []
    while (got := await declared.get(no_ack=True, fail=False)) is not None:
        taken.append(got)
    return taken


async def test_an_850_on_sftp_is_posted_to_the_erp_as_an_order_and_a_997_goes_back(
        acme: Acme, erp: ErpStandIn, broker: AbstractChannel) -> None:
    acme.upload("po-101.x12")

    engine, letters = await acme.run()

    stats = engine.stats.routes[ROUTE]
    assert (stats.received, stats.delivered, stats.retried, stats.dead_lettered) == (1, 1, 0, 0)
    [request] = erp.requests
    assert (request.method, request.path) == ("POST", "/api/v2/orders")
    assert json.loads(request.body) == GOLDEN  # the canonical Order, money as exact decimal strings
    assert b'"unit_price":"12.50"' in request.body.replace(b" ", b"")
    assert request.headers["Idempotency-Key"] == "4500012345"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.headers["X-Correlation-ID"]
    # The 997 is on Acme's server, in the partner's envelope: group 101, set 0001 accepted.
    [ack] = acme.acks()
    assert ack[0][6].strip() == "BUYERCO" and ack[0][8].strip() == "SUPPLIERCO"
    assert ["AK1", "PO", "101"] in ack and ["AK2", "850", "0001"] in ack and ["AK5", "A"] in ack
    assert (acme.outbound / "archive" / "po-101.x12").read_bytes() == SAMPLE
    assert list(acme.outbound.glob("*.x12")) == []
    assert letters == [] and await take_all(broker, DLQ) == []

    # Acme resends the PO under a new interchange number: acknowledged again, but skipped as a
    # duplicate of a PO number the ERP already took, so the ERP sees no second request.
    resent = (SAMPLE.replace(b"000000101", b"000000102")  # ISA13 and IEA02
              .replace(b"*101*X*", b"*102*X*").replace(b"GE*1*101", b"GE*1*102"))  # GS06 and GE02
    acme.upload("po-101-resent.x12", resent)
    again, letters = await acme.run()
    assert letters == []
    assert again.stats.routes[ROUTE].duplicates == 1
    assert (acme.outbound / "archive" / "po-101-resent.x12").exists()  # skipped is done with, not failed
    assert len(erp.requests) == 1
    assert sorted(next(s for s in ack if s[0] == "AK1")[2] for ack in acme.acks()) == ["101", "102"]


async def test_a_503_from_the_erp_is_retried_with_the_same_idempotency_key(
        acme: Acme, erp: ErpStandIn, broker: AbstractChannel) -> None:
    erp.answer(Answer(503, b'{"error": "maintenance"}'), Answer(201))
    acme.upload("po-101.x12")

    engine, letters = await acme.run()

    stats = engine.stats.routes[ROUTE]
    assert (stats.delivered, stats.retried, stats.dead_lettered) == (1, 1, 0)
    first, second = erp.requests
    assert first.body == second.body and json.loads(second.body) == GOLDEN
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"] == "4500012345"
    assert first.headers["X-Correlation-ID"] == second.headers["X-Correlation-ID"]
    # Two waits, both on the ManualClock, not in real time: the source's `settle 5s` (a file must stay
    # unchanged that long before it is taken), then one retry wait from the backoff's first step of
    # 2s with full jitter, so never more than 2s.
    settle, wait = acme.clock.sleeps
    assert settle == 5.0 and 0 <= wait <= 2.0
    assert len(acme.acks()) == 1  # acknowledged once, when read; retrying the ERP sends no second 997
    assert (acme.outbound / "archive" / "po-101.x12").exists()
    assert letters == [] and await take_all(broker, DLQ) == []


async def test_an_order_the_erp_refuses_is_dead_lettered_to_the_store_and_to_the_amqp_queue(
        acme: Acme, erp: ErpStandIn, broker: AbstractChannel) -> None:
    refusal = b'{"errors": [{"field": "lines[1].sku", "message": "unknown sku SKU-200"}]}'
    erp.answer(Answer(422, refusal))
    acme.upload("po-101.x12")

    engine, letters = await acme.run()

    stats = engine.stats.routes[ROUTE]
    assert (stats.delivered, stats.retried, stats.dead_lettered) == (0, 0, 1)
    assert len(erp.requests) == 1  # a 422 is not retried
    assert acme.clock.sleeps == [5.0]  # the source's settle only: no retry wait
    [letter] = letters
    assert letter.code == "RST422" and letter.route == ROUTE and letter.business_key == "4500012345"
    # the Order as it was at the failing step, where `crossdock dlq replay` resumes
    assert json.loads(letter.stage_payload or b"")["po_number"] == "4500012345"
    assert letter.error["status"] == 422 and "unknown sku SKU-200" in letter.error["body"]
    assert TOKEN not in json.dumps([letter.error, letter.error_chain, letter.meta], default=str)
    # The same dead letter on the queue the operations team watches: the payload, the error code and
    # the correlation id the ERP saw.
    [published] = await take_all(broker, DLQ)
    assert published.body == letter.payload == SAMPLE  # the interchange as Acme sent it
    assert published.headers["X-Dead-Letter-ID"] == letter.id  # for `crossdock dlq show|replay`
    assert published.headers["X-Failed-Step"] == 'to rest "erp-api"'
    assert published.headers["X-Error-Code"] == "RST422"
    assert published.correlation_id == letter.correlation_id == erp.requests[0].headers["X-Correlation-ID"]
    assert published.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    # The EDI itself was fine: Acme got its 997 (accepted), and the file went to rejected/ because
    # its only order was dead-lettered.
    [ack] = acme.acks()
    assert ["AK5", "A"] in ack
    assert (acme.outbound / "rejected" / "po-101.x12").read_bytes() == SAMPLE


def test_the_example_lints_clean_and_its_maps_pass_their_fixtures(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["lint", str(ROUTES)]) == 0
    assert "0 error(s), 0 warning(s)" in capsys.readouterr().out
    assert cli_main(["test", str(ROUTES)]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out
