"""examples/x12-850 outbound: canonical Orders, Shipments and Invoices from the ERP become 855s, 856s
and 810s for Acme and 940s for the 3PL, each in its partner's envelope with that partner's control
numbers; the partners' 997s reconcile what was sent."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.services import Services
from crossdock.formats.x12 import Document, Mode, read

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "x12-850"
FIXTURES = EXAMPLE / "routes" / "fixtures"
# ManualClock's start, 2023-11-14T22:13:20Z: BSN03/BSN04 of an 856 built at that moment.
START = 1_700_000_000.0


def deployment(tmp_path: Path) -> tuple[Path, Path]:
    routes = tmp_path / "routes"
    shutil.copytree(EXAMPLE / "routes", routes)
    return routes, tmp_path / "data"


def drop(data: Path, folder: str, fixture: str, name: str | None = None, **changes: object) -> None:
    """Put a fixture (with top-level fields changed) where a route picks it up."""
    document = json.loads((FIXTURES / fixture).read_text())
    document.update(changes)
    target = data / folder
    target.mkdir(parents=True, exist_ok=True)
    (target / (name or fixture)).write_text(json.dumps(document))


async def run(routes: Path, data: Path, clock: ManualClock) -> Engine:
    result = lint([routes])
    assert result.plan is not None and not result.diagnostics, [str(d) for d in result.diagnostics]
    async with embedded_stores(data) as stores:
        services = Services(stores=stores, data_dir=data, clock=clock, partners=result.plan.partners)
        engine = Engine(result.plan, services)
        await engine.run(once=True, stop=anyio.Event())
    return engine


def sent(data: Path, folder: str, prefix: str) -> list[Path]:
    return sorted((data / "edi" / folder).glob(f"{prefix}-*.x12"))


def strict(path: Path) -> Document:
    """The interchange in `path`, read strictly: it must carry no issue at all."""
    document = read(path.read_bytes(), mode=Mode.STRICT)
    assert [str(issue) for issue in document.all_issues()] == []
    return document


def segments(path: Path) -> list[str]:
    return path.read_text().strip("~").split("~")


def body(path: Path) -> list[str]:
    """The segments of the one set in `path`, ST to SE."""
    parts = segments(path)
    return parts[2:-2]


def envelope(path: Path) -> tuple[str, str, str, str, str, str]:
    """(ISA06, ISA08, ISA13, GS01, GS06, ST02) of a file holding one set."""
    isa, gs, st = (s.split("*") for s in segments(path)[:3])
    return isa[6].strip(), isa[8].strip(), isa[13], gs[1], gs[6], st[2]


async def test_an_order_confirmation_becomes_an_855_accepting_every_line(tmp_path: Path) -> None:
    routes, data = deployment(tmp_path)
    drop(data, "erp/confirmations", "order-4500012346.json")
    engine = await run(routes, data, ManualClock())
    [path] = sent(data, "to-acme", "855")
    [ts] = strict(path).sets()
    assert ts.set_id == "855"
    assert envelope(path)[:4] == ("BUYERCO", "SUPPLIERCO", "000000001", "PR")
    assert body(path) == [
        "ST*855*0001",
        "BAK*00*AD*4500012346*20240116",
        "N1*ST*ACME STORE 107*92*0107", "N3*55 MAIN ST*SUITE 4", "N4*AUSTIN*TX*78701*US",
        "PO1*1*6*EA*9.75**VP*SKU-300*UP*036000291452*BP*ACME-300", "PID*F****GREEN WIDGET", "ACK*IA*6*EA",
        "PO1*2*2*CA*125.00**VP*SKU-100*UK*10012345678902", "ACK*IA*2*CA",
        "CTT*2",
        "SE*12*0001",
    ]
    assert engine.stats.routes["ERP order confirmations to Acme 855s"].delivered == 1


async def test_an_erp_acknowledgment_of_every_line_accepted_is_an_855_with_detail_and_no_change(
        tmp_path: Path) -> None:
    routes, data = deployment(tmp_path)
    acknowledgment = json.loads((FIXTURES / "erp-ack-4500012345.json").read_text())
    for line in acknowledgment["lines"]:
        line["status"] = "accepted"
    drop(data, "erp/acknowledgments", "erp-ack-4500012345.json", all_accepted=True, lines=acknowledgment["lines"])
    await run(routes, data, ManualClock())
    [path] = sent(data, "to-acme", "855")
    [ts] = strict(path).sets()
    assert ts.get("BAK02") == "AD" and [loop.get("ACK01") for loop in ts.loops("PO1")] == ["IA", "IA"]


async def test_a_shipment_becomes_an_856_of_shipment_order_pack_and_item_levels(tmp_path: Path) -> None:
    routes, data = deployment(tmp_path)
    drop(data, "erp/shipments", "shipment-SHP-20240120-1.json")
    await run(routes, data, ManualClock(START))
    [path] = sent(data, "to-acme", "856")
    [ts] = strict(path).sets()
    assert envelope(path)[3] == "SH"
    lines = body(path)
    assert lines[:2] == ["ST*856*0001", "BSN*00*SHP-20240120-1*20231114*2213*0001"]
    # HL01 numbers the levels in order, HL02 names the parent, HL04 says whether children follow:
    # two orders, the first with two cartons, the second with one carton of two items.
    assert [s for s in lines if s.startswith("HL*")] == [
        "HL*1**S*1",
        "HL*2*1*O*1", "HL*3*2*P*1", "HL*4*3*I*0", "HL*5*2*P*1", "HL*6*5*I*0",
        "HL*7*1*O*1", "HL*8*7*P*1", "HL*9*8*I*0", "HL*10*8*I*0",
    ]
    assert lines[lines.index("HL*1**S*1"):lines.index("HL*2*1*O*1")] == [
        "HL*1**S*1", "TD1**3", "TD5**2*UPSN**GROUND", "REF*BM*BOL-778899",
        "DTM*011*20240120", "DTM*017*20240123",
        "N1*SF*CROSSDOCK DALLAS DC*91*DAL", "N3*4000 INDUSTRIAL PKWY", "N4*DALLAS*TX*75212*US",
        "N1*ST*ACME DC*92*0042", "N3*1200 COMMERCE BLVD", "N4*DALLAS*TX*75201*US",
    ]
    assert lines[lines.index("HL*2*1*O*1") + 1] == "PRF*4500012345"
    assert lines[lines.index("HL*7*1*O*1") + 1] == "PRF*4500012346"
    assert [s for s in lines if s.startswith("MAN*")] == [
        "MAN*GM*00000123456700000018**CP*1Z999AA10123456784",
        "MAN*GM*00000123456700000025**CP*1Z999AA10123456793",
        "MAN*CP*1Z999AA10123456800",
    ]
    assert lines[lines.index("HL*10*8*I*0"):] == ["HL*10*8*I*0", "LIN*2*VP*SKU-100", "SN1**2*CA", "CTT*10",
                                                   f"SE*{len(lines)}*0001"]
    # The paths a map reading 856s uses find the same content.
    assert ts.values('HL[HL03="O"].PRF01') == ["4500012345", "4500012346"]
    assert ts.values('HL[HL03="I"].LIN03') == ["SKU-100", "SKU-200", "SKU-300", "SKU-100"]


async def test_a_one_order_freight_shipment_names_its_carrier_and_pro_number(tmp_path: Path) -> None:
    routes, data = deployment(tmp_path)
    drop(data, "erp/shipments", "shipment-SHP-20240122-7.json")
    await run(routes, data, ManualClock(START))
    [path] = sent(data, "to-acme", "856")
    strict(path)
    assert body(path) == [
        "ST*856*0001",
        "BSN*00*SHP-20240122-7*20231114*2213*0001",
        "HL*1**S*1", "TD1**1", "TD5*****DALLAS FREIGHT LINES LTL", "REF*CN*PRO-5512034", "DTM*011*20240122",
        "N1*SF*CROSSDOCK DALLAS DC*91*DAL", "N3*4000 INDUSTRIAL PKWY", "N4*DALLAS*TX*75212*US",
        "N1*ST*ACME STORE 107*UL*0614141000012", "N3*55 MAIN ST*SUITE 4", "N4*AUSTIN*TX*78701*US",
        # the lines name no order: the shipment's only one is theirs
        "HL*2*1*O*1", "PRF*4500012346",
        "HL*3*2*P*1", "MAN*GM*00000123456700000049",
        "HL*4*3*I*0", "LIN**VP*SKU-300", "SN1**6*EA",
        "HL*5*3*I*0", "LIN**VP*SKU-100", "SN1**2*CA",
        "CTT*5",
        "SE*25*0001",
    ]


def _mixed_carton(shipment: dict[str, Any]) -> None:
    shipment["packages"][0]["lines"].append(
        {"sku": "SKU-300", "quantity": "1", "unit": "each", "po_number": "4500012346", "line_number": 1})


def _unnamed_order(shipment: dict[str, Any]) -> None:
    del shipment["packages"][2]["lines"][0]["po_number"]


def _eleven_orders(shipment: dict[str, Any]) -> None:
    shipment["po_numbers"] += [f"45000124{n:02d}" for n in range(9)]


def _two_pro_numbers(shipment: dict[str, Any]) -> None:
    shipment["tracking_numbers"] = ["PRO-1", "PRO-2"]


@pytest.mark.parametrize("change", [_mixed_carton, _unnamed_order, _eleven_orders, _two_pro_numbers])
async def test_a_shipment_the_856_cannot_describe_goes_to_people(
        tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    routes, data = deployment(tmp_path)
    shipment = json.loads((FIXTURES / "shipment-SHP-20240120-1.json").read_text())
    change(shipment)
    drop(data, "erp/shipments", "shipment-SHP-20240120-1.json", **shipment)
    engine = await run(routes, data, ManualClock())
    assert sent(data, "to-acme", "856") == []
    held = json.loads((data / "erp" / "exceptions" / "856-SHP-20240120-1.json").read_text())
    assert held["packages"] == shipment["packages"] and held["po_numbers"] == shipment["po_numbers"]
    stats = engine.stats.routes["ERP shipments to Acme 856s"]
    assert (stats.delivered, stats.dead_lettered) == (1, 0)


async def test_an_invoice_becomes_an_810_with_totals_in_implied_decimals(tmp_path: Path) -> None:
    routes, data = deployment(tmp_path)
    drop(data, "erp/invoices", "invoice-INV-88001.json")
    await run(routes, data, ManualClock())
    [path] = sent(data, "to-acme", "810")
    [ts] = strict(path).sets()
    assert envelope(path)[3] == "IN"
    assert body(path) == [
        "ST*810*0001",
        "BIG*20240120*INV-88001**4500012345",
        "CUR*SE*USD",
        "N1*BT*ACME CORP*92*0001", "N3*PO BOX 9000", "N4*DALLAS*TX*75201*US",
        "N1*ST*ACME DC*92*0042",
        "N1*RI*CROSSDOCK DISTRIBUTION", "N3*PO BOX 4400", "N4*CHICAGO*IL*60601*US",
        "ITD*08*3*2**10*20240219*30",
        "IT1*1*10*EA*12.50**VP*SKU-100", "PID*F****BLUE WIDGET",
        "IT1*3*4*CA*80.00**VP*SKU-200",
        "TDS*46050",
        "SAC*C*D240***2550",
        "SAC*A*C310***1000",
        "CTT*2",
        "SE*19*0001",
    ]
    # TDS01 is N2: 46050 is 460.50, which is 445.00 of lines + 25.50 freight - 10.00 discount.
    assert ts.get("TDS01") == "46050"


async def test_a_warehouse_order_becomes_a_940_for_the_3pl(tmp_path: Path) -> None:
    routes, data = deployment(tmp_path)
    drop(data, "erp/warehouse-orders", "order-4500012346.json")
    await run(routes, data, ManualClock())
    assert sent(data, "to-acme", "940") == []
    [path] = sent(data, "to-3pl", "940")
    strict(path)
    assert envelope(path) == ("BUYERCO", "DALLAS3PL", "000000001", "OW", "1", "0001")
    assert body(path) == [
        "ST*940*0001",
        "W05*N*4500012346*4500012346",
        "N1*ST*ACME STORE 107*92*0107", "N3*55 MAIN ST*SUITE 4", "N4*AUSTIN*TX*78701*US",
        "N1*BT*ACME CORP*92*0001", "N3*PO BOX 9000", "N4*DALLAS*TX*75201*US",
        "N1*SF**91*DAL",
        "G62*10*20240118", "G62*02*20240122", "G62*01*20240131",
        "NTE*WHI*CALL BEFORE DELIVERY",
        "LX*1", "W01*6*EA**VN*SKU-300*UP*036000291452", "G69*GREEN WIDGET",
        "LX*2", "W01*2*CA**VN*SKU-100*UK*10012345678902",
        "W76*8",
        "SE*20*0001",
    ]


async def test_control_numbers_increase_per_partner_across_runs_and_never_repeat(tmp_path: Path) -> None:
    routes, data = deployment(tmp_path)
    clock = ManualClock()
    drop(data, "erp/confirmations", "acme-850.order.json")
    drop(data, "erp/shipments", "shipment-SHP-20240120-1.json")
    drop(data, "erp/warehouse-orders", "order-4500012346.json")
    await run(routes, data, clock)
    first_acme = {path.name for path in (data / "edi" / "to-acme").glob("*.x12")}
    first_3pl = {path.name for path in (data / "edi" / "to-3pl").glob("*.x12")}
    clock.advance(3600)
    drop(data, "erp/confirmations", "order-4500012346.json")
    drop(data, "erp/invoices", "invoice-INV-88001.json")
    drop(data, "erp/warehouse-orders", "acme-850.order.json")
    await run(routes, data, clock)

    def numbers(folder: str, first_run: set[str], *, later: bool) -> list[tuple[int, int, int]]:
        """(ISA13, GS06, ST02) of what a run sent to one partner: the first run's files, or the later ones."""
        found = []
        for path in (data / "edi" / folder).glob("*.x12"):
            if (path.name not in first_run) == later:
                strict(path)
                _, _, isa13, _, gs06, st02 = envelope(path)
                found.append((int(isa13), int(gs06), int(st02)))
        return found

    acme_first, acme_second = numbers("to-acme", first_acme, later=False), numbers("to-acme", first_acme, later=True)
    assert (len(acme_first), len(acme_second)) == (2, 2)
    for kind in range(3):  # ISA13, GS06, ST02: one counter each, per partner
        assert sorted(n[kind] for n in acme_first) == [1, 2]
        assert sorted(n[kind] for n in acme_second) == [3, 4]
    third_party = numbers("to-3pl", first_3pl, later=False) + numbers("to-3pl", first_3pl, later=True)
    assert sorted(third_party) == [(1, 1, 1), (2, 2, 2)]  # the 3PL's counters are its own
    groups = {(path.name[:3], envelope(path)[3]) for path in (data / "edi" / "to-acme").glob("*.x12")}
    assert groups == {("855", "PR"), ("856", "SH"), ("810", "IN")}


async def test_the_partners_997s_reconcile_what_was_sent(tmp_path: Path) -> None:
    routes, data = deployment(tmp_path)
    clock = ManualClock()
    drop(data, "erp/invoices", "invoice-INV-88001.json")
    drop(data, "erp/warehouse-orders", "order-4500012346.json")
    await run(routes, data, clock)
    [invoice] = sent(data, "to-acme", "810")
    [order] = sent(data, "to-3pl", "940")
    async with embedded_stores(data) as stores:
        assert stores.edi is not None
        pending = await stores.edi.sent.overdue(clock.now() + 86_400)
    # the 3PL has 4 hours, Acme a day (the default)
    assert sorted((p.partner, p.set_id, p.due_at - p.sent_at) for p in pending) == [
        ("3pl", "940", 4 * 3600.0), ("acme", "810", 86_400.0)]

    def answer(path: Path, sender: str, functional_id: str, set_id: str) -> str:
        _, _, _, _, group, control = envelope(path)
        return (f"ISA*00*          *00*          *ZZ*{sender:<15}*ZZ*BUYERCO        *231115*0800*U*00401*"
                f"000000501*0*P*>~GS*FA*{sender}*BUYERCO*20231115*0800*501*X*004010~ST*997*0001~AK1*{functional_id}*{group}~"
                f"AK2*{set_id}*{control}~AK5*A~AK9*A*1*1*1~SE*6*0001~GE*1*501~IEA*1*000000501~")

    (data / "edi" / "from-3pl").mkdir(parents=True, exist_ok=True)
    (data / "edi" / "from-3pl" / "fa-501.x12").write_text(answer(order, "DALLAS3PL", "OW", "940"))
    (data / "edi" / "from-acme").mkdir(parents=True, exist_ok=True)
    (data / "edi" / "from-acme" / "fa-501.x12").write_text(answer(invoice, "SUPPLIERCO", "IN", "810"))
    engine = await run(routes, data, clock)
    async with embedded_stores(data) as stores:
        assert stores.edi is not None
        assert await stores.edi.sent.overdue(clock.now() + 86_400) == []
        assert await stores.dead_letters.list() == []
    # a 997 is never acknowledged, and is not passed on as if it were an order or an advice
    assert sent(data, "to-acme", "997") == [] and sent(data, "to-3pl", "997") == []
    assert not (data / "erp" / "warehouse-advices").exists() or not list((data / "erp" / "warehouse-advices").iterdir())
    assert not list((data / "erp" / "orders").glob("*.json"))
    assert engine.stats.routes["3PL acknowledgments and advices"].filtered == 1
    assert engine.stats.routes["Acme purchase orders to ERP"].filtered == 1
