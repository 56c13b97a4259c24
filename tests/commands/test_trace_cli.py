"""`crossdock trace` over the X12 example: a PO's whole story across routes, found by its number, by a
correlation id or by a dead-letter id, as a timeline and as JSON.

The example routes run stage by stage, an hour apart on a ManualClock, as the documents would arrive:
Acme's 850 for PO 4500012345, the ERP's acknowledgment of it (an 855 to Acme), a shipment with that
PO and another (an 856), the invoice (an 810), and an invoice the ERP exported without lines
(dead-lettered by `validate as Invoice`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anyio
import pytest

from crossdock.cli import main
from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.services import Services

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "x12-850"
FIXTURES = EXAMPLE / "routes" / "fixtures"
PO = "4500012345"
STORY = [
    ("Acme purchase orders to ERP", "edi/from-acme", FIXTURES / "acme-850.x12"),
    ("ERP acknowledgments to Acme 855s", "erp/acknowledgments",
     EXAMPLE / "erp-acknowledgments" / "erp-ack-4500012345.json"),
    ("ERP shipments to Acme 856s", "erp/shipments", FIXTURES / "shipment-SHP-20240120-1.json"),
    ("ERP invoices to Acme 810s", "erp/invoices", FIXTURES / "invoice-INV-88001.json"),
]


async def _run_stages(routes: Path, data: Path) -> None:
    result = lint([routes])
    assert result.plan is not None and not result.errors, [str(d) for d in result.errors]
    clock = ManualClock()
    unbilled = {**json.loads((FIXTURES / "invoice-INV-88001.json").read_text()), "invoice_number": "INV-88002"}
    del unbilled["lines"]
    stages = [(folder, sample.name, sample.read_bytes()) for _, folder, sample in STORY]
    stages.append(("erp/invoices", "invoice-INV-88002.json", json.dumps(unbilled).encode()))
    for folder, name, payload in stages:
        (data / folder).mkdir(parents=True, exist_ok=True)
        (data / folder / name).write_bytes(payload)
        async with embedded_stores(data) as stores:
            engine = Engine(result.plan, Services(stores=stores, data_dir=data, clock=clock,
                                                  partners=result.plan.partners))
            await engine.run(once=True, stop=anyio.Event())
        clock.advance(3600)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data folder after the whole story ran (built once: every test only reads it)."""
    root = tmp_path_factory.mktemp("x12-story")
    shutil.copytree(EXAMPLE / "routes", root / "routes")
    anyio.run(_run_stages, root / "routes", root / "data")
    return root / "data"


def trace(capsys: pytest.CaptureFixture[str], data: Path, query: str, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["trace", query, "--data", str(data), *extra])
    return code, capsys.readouterr().out


def story(capsys: pytest.CaptureFixture[str], data: Path, query: str) -> dict:
    code, out = trace(capsys, data, query, "--format", "json")
    assert code == 0
    return json.loads(out)


def test_a_po_number_tells_its_story_across_routes_in_time_order(data: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    found = story(capsys, data, PO)
    assert found["found_by"] == ["business key"]
    messages = found["messages"]
    assert [m["route"] for m in messages] == [route for route, _, _ in STORY] + ["ERP invoices to Acme 810s"]
    assert [m["outcome"] for m in messages] == ["delivered"] * 4 + ["dead-lettered"]
    assert len({m["correlation_id"] for m in messages}) == 5
    assert [m["keys"] for m in messages] == [
        [PO], [PO], [PO, "4500012346", "SHP-20240120-1"], [PO, "INV-88001"], [PO, "INV-88002"],
    ]
    assert [m["started_at"][:13] for m in messages] == [  # an hour apart, as they ran
        "2023-11-14T22", "2023-11-14T23", "2023-11-15T00", "2023-11-15T01", "2023-11-15T02",
    ]
    order = messages[0]["events"]
    assert [e["event"] for e in order] == [
        "received", "delivered", "tracked", "mapped", "delivered", "acked",
    ]
    assert order[1]["step"] == 'acknowledge to file "acme-pickup"'  # the 997
    assert order[4]["step"] == 'to file "erp-orders"'
    assert [e["event"] for e in messages[3]["events"]] == ["received", "tracked", "mapped", "delivered", "acked"]
    assert [e["event"] for e in messages[4]["events"]] == ["received", "tracked", "dead-lettered", "acked"]


def test_the_timeline_shows_each_message_with_its_correlation_id_and_outcome(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messages = story(capsys, data, PO)["messages"]
    code, text = trace(capsys, data, PO)
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == f"{PO}: 5 message(s) in 4 route(s), found by business key"
    headings = [line for line in lines if line and not line.startswith(" ")][1:]
    assert headings == [f"{m['route']}: {m['outcome']}" for m in messages]
    for message in messages:
        assert f"  correlation {message['correlation_id']}  keys {', '.join(message['keys'])}" in lines
    first = lines[lines.index("Acme purchase orders to ERP: delivered") + 2:][:6]
    assert [line.split(None, 2)[1:] for line in first] == [
        ["received", 'from file "acme-drop"'],
        ["delivered", 'acknowledge to file "acme-pickup" attempts 1'],
        ["tracked", f"track by {PO}"],
        ["mapped", 'map with "X12 850 to Order"'],
        ["delivered", 'to file "erp-orders" attempts 1'],
        ["acked", "delivered"],
    ]
    assert all(line.startswith(f"  {messages[0]['started_at']}  ") for line in first)
    [dead] = [line for line in lines if "dead-lettered " in line]
    assert "V001" in dead and "(dead letter " in dead


def test_a_correlation_id_brings_the_rest_of_its_document_s_story(data: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    by_po = story(capsys, data, PO)["messages"]
    shipment = by_po[2]
    found = story(capsys, data, shipment["correlation_id"])
    assert found["found_by"] == ["correlation id"]
    routes = [m["route"] for m in found["messages"]]
    # the shipment carried both POs: the story of each comes with it
    assert routes[:4] == [route for route, _, _ in STORY]
    assert {m["correlation_id"] for m in by_po} <= {m["correlation_id"] for m in found["messages"]}


def test_a_dead_letter_id_finds_the_failed_message_and_its_po_s_story(data: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["dlq", "list", "--format", "json", "--data", str(data)]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    found = story(capsys, data, entry["id"])
    assert found["found_by"] == ["dead-letter id"]
    failed = [m for m in found["messages"] if m["correlation_id"] == entry["correlation_id"]]
    assert [m["dead_letters"] for m in failed] == [[entry["id"]]]
    assert failed[0]["keys"] == [PO, "INV-88002"]
    assert found["messages"][0]["route"] == "Acme purchase orders to ERP"  # the PO's story, from its start


def test_nothing_found_exits_1_and_a_folder_without_stores_exits_2(data: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, text = trace(capsys, data, "PO-NEVER-SEEN")
    assert code == 1 and "nothing in the journal for 'PO-NEVER-SEEN'" in text
    assert main(["trace", PO, "--data", str(tmp_path / "nowhere")]) == 2
    assert not (tmp_path / "nowhere").exists()
