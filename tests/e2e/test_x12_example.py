"""examples/x12-850 end to end: 850s in, Orders to the ERP, 997s back, 855s out, 997s reconciled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anyio
import pytest

from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.services import Services
from crossdock.formats.x12 import Mode, read

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "x12-850"
SAMPLE = (EXAMPLE / "routes" / "fixtures" / "acme-850.x12").read_bytes()


def deployment(tmp_path: Path) -> tuple[Path, Path]:
    routes = tmp_path / "routes"
    shutil.copytree(EXAMPLE / "routes", routes)
    data = tmp_path / "data"
    (data / "edi" / "from-acme").mkdir(parents=True)
    (data / "erp" / "acknowledgments").mkdir(parents=True)
    return routes, data


async def run(routes: Path, data: Path, clock: ManualClock) -> Engine:
    result = lint([routes])
    assert result.plan is not None and not result.errors, [str(d) for d in result.errors]
    async with embedded_stores(data) as stores:
        services = Services(stores=stores, data_dir=data, clock=clock, partners=result.plan.partners)
        engine = Engine(result.plan, services)
        await engine.run(once=True, stop=anyio.Event())
    return engine


def pickup(data: Path, prefix: str) -> list[Path]:
    return sorted((data / "edi" / "to-acme").glob(f"{prefix}-*.x12"))


def segments(path: Path) -> list[list[str]]:
    return [s.split("*") for s in path.read_text().strip("~").split("~")]


async def test_850_becomes_an_order_and_a_997_goes_back(tmp_path: Path) -> None:
    routes, data = deployment(tmp_path)
    (data / "edi" / "from-acme" / "po-101.x12").write_bytes(SAMPLE)
    engine = await run(routes, data, ManualClock())
    order = json.loads((data / "erp" / "orders" / "4500012345.json").read_text())
    golden = json.loads((routes / "fixtures" / "acme-850.order.json").read_text())
    assert order == golden
    [ack] = pickup(data, "997")
    assert not read(ack.read_bytes(), mode=Mode.STRICT).errors
    parts = segments(ack)
    isa = parts[0]
    assert (isa[6].strip(), isa[8].strip(), isa[13]) == ("BUYERCO", "SUPPLIERCO", "000000001")
    assert ["AK1", "PO", "101"] in parts
    assert ["AK2", "850", "0001"] in parts and ["AK5", "A"] in parts
    assert ["AK9", "A", "1", "1", "1"] in parts
    assert engine.stats.routes["Acme purchase orders to ERP"].delivered == 1


async def test_a_resent_interchange_is_not_processed_twice(tmp_path: Path) -> None:
    routes, data = deployment(tmp_path)
    clock = ManualClock()
    (data / "edi" / "from-acme" / "po-101.x12").write_bytes(SAMPLE)
    await run(routes, data, clock)
    (data / "erp" / "orders" / "4500012345.json").unlink()
    (data / "edi" / "from-acme" / "po-101-again.x12").write_bytes(SAMPLE)
    engine = await run(routes, data, clock)
    stats = engine.stats.routes["Acme purchase orders to ERP"]
    assert (stats.received, stats.duplicates, stats.delivered) == (1, 1, 0)
    assert not (data / "erp" / "orders" / "4500012345.json").exists()
    assert len(pickup(data, "997")) == 1
    assert (data / "edi" / "from-acme" / "done" / "po-101-again.x12").exists()


async def test_a_broken_set_is_rejected_in_the_997_and_dead_lettered(tmp_path: Path) -> None:
    routes, data = deployment(tmp_path)
    broken = SAMPLE.replace(b"SE*23*0001~", b"SE*22*0001~")
    (data / "edi" / "from-acme" / "po-bad.x12").write_bytes(broken)
    await run(routes, data, ManualClock())
    [ack] = pickup(data, "997")
    parts = segments(ack)
    assert ["AK5", "R", "4"] in parts
    assert ["AK9", "R", "1", "1", "0"] in parts
    assert not (data / "erp" / "orders").exists() or not list((data / "erp" / "orders").iterdir())
    async with embedded_stores(data) as stores:
        [entry] = await stores.dead_letters.list()
    assert entry.code.startswith("X12-E") and entry.payload == broken
    assert entry.step == "for each" and entry.error["position"]["segment"] == 25  # the SE: ISA is 1, GS 2, ST 3
    assert (data / "edi" / "from-acme" / "failed" / "po-bad.x12").exists()


async def test_erp_acknowledgment_becomes_an_855_and_acme_s_997_reconciles_it(tmp_path: Path) -> None:
    routes, data = deployment(tmp_path)
    clock = ManualClock()
    shutil.copy(EXAMPLE / "erp-acknowledgments" / "erp-ack-4500012345.json", data / "erp" / "acknowledgments")
    await run(routes, data, clock)
    [sent] = pickup(data, "855")
    document = read(sent.read_bytes(), mode=Mode.STRICT)
    assert not document.errors
    [ts] = list(document.sets())
    assert ts.get("BAK03") == "4500012345" and ts.get("BAK02") == "AC"
    assert [loop.get("ACK01") for loop in ts.loops("PO1")] == ["IA", "IB"]
    assert ts.get("CTT01") == "2"
    group_control = next(iter(document.interchanges)).groups[0].control_number
    async with embedded_stores(data) as stores:
        [pending] = await stores.edi.sent.overdue(clock.now() + 86_400)
    assert pending.set_id == "855" and pending.status is None

    acme_997 = (
        "ISA*00*          *00*          *ZZ*SUPPLIERCO     *ZZ*BUYERCO        *261123*1200*U*00401*000000777*0*P*>~"
        f"GS*FA*SUPPLIERCO*BUYERCO*20261123*1200*777*X*004010~ST*997*0001~AK1*PR*{group_control}~"
        f"AK2*855*{ts.control_number}~AK5*A~AK9*A*1*1*1~SE*6*0001~GE*1*777~IEA*1*000000777~"
    )
    (data / "edi" / "from-acme" / "fa-777.x12").write_text(acme_997)
    await run(routes, data, clock)
    async with embedded_stores(data) as stores:
        assert await stores.edi.sent.overdue(clock.now() + 86_400) == []
        [reconciled] = await stores.edi.sent.sets("acme", group_control)
    assert reconciled.status == "A"
    assert len(pickup(data, "997")) == 0  # a 997 is never acknowledged
