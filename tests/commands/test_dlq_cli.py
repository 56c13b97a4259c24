"""`crossdock dlq list | show | replay | purge` over a store filled by a real run of the demo routes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crossdock.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, Path]:
    routes = tmp_path / "routes"
    shutil.copytree(REPO / "routes", routes, ignore=shutil.ignore_patterns("fixtures"))
    data = tmp_path / "data"
    (data / "inbox").mkdir(parents=True)
    for sample in (REPO / "examples" / "webstore-orders").glob("*.json"):
        shutil.copy(sample, data / "inbox" / sample.name)
    assert main(["run", str(routes), "--once", "--data", str(data)]) == 0
    return routes, data


def listed(capsys: pytest.CaptureFixture[str], data: Path, *extra: str) -> list[dict]:
    assert main(["dlq", "list", "--format", "json", "--data", str(data), *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_list_shows_each_bad_order_with_its_cause(demo: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, data = demo
    capsys.readouterr()
    entries = {e["code"]: e for e in listed(capsys, data)}
    assert set(entries) == {"D103", "V001"}
    assert entries["D103"]["step"] == "read json"
    assert "line 6, column 1" in entries["D103"]["error"]
    assert "ship_to" in entries["V001"]["error"]
    assert listed(capsys, data, "--code", "V001")[0]["code"] == "V001"
    assert listed(capsys, data, "--route", "no such route") == []
    assert main(["dlq", "list", "--data", str(data)]) == 0
    assert "2 dead letter(s)" in capsys.readouterr().out


def test_show_prints_the_error_chain_and_the_original_payload(
    demo: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, data = demo
    capsys.readouterr()
    entry = next(e for e in listed(capsys, data) if e["code"] == "D103")
    assert main(["dlq", "show", entry["id"], "--data", str(data)]) == 0
    out = capsys.readouterr().out
    details, payload = out.split("--- payload ---\n")
    parsed = json.loads(details)
    assert parsed["error_chain"][0]["code"] == "D103"
    assert parsed["attempts"][0]["attempt"] == 1
    original = (REPO / "examples" / "webstore-orders" / "order-1004-truncated.json").read_text()
    assert payload.rstrip("\n") == original.rstrip("\n")
    assert main(["dlq", "show", "nope", "--data", str(data)]) == 1
    assert "no dead letter 'nope'" in capsys.readouterr().err


def test_replay_after_fixing_the_input_shape_delivers_it(
    demo: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    routes, data = demo
    capsys.readouterr()
    entry = next(e for e in listed(capsys, data) if e["code"] == "V001")
    map_file = routes / "webstore-map.route"
    # the analyst's fix: orders without a shipping address ship to the customer
    map_file.write_text(map_file.read_text().replace(
        "  ship_to = object from shipping_address\n",
        "  ship_to = object from shipping_address default customer\n",
    ).replace("    name = name\n    address = object", "    name = name default concat(first_name, \" \", last_name)\n"
              "    address = object"))
    assert main(["lint", str(routes)]) == 0
    capsys.readouterr()
    assert main(["dlq", "replay", entry["id"], "--routes", str(routes), "--data", str(data)]) == 0
    assert f"{entry['id']}: delivered" in capsys.readouterr().out
    written = json.loads((data / "outbox" / "erp" / "WEB-1005.json").read_text())
    assert written["ship_to"]["name"] == "Di Fox"
    assert entry["id"] not in [e["id"] for e in listed(capsys, data)]
    replayed = next(e for e in listed(capsys, data, "--all") if e["id"] == entry["id"])
    assert replayed["replayed_at"] is not None


def test_purge_by_id_and_everything(demo: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, data = demo
    capsys.readouterr()
    first, second = listed(capsys, data)
    assert main(["dlq", "purge", first["id"], "--data", str(data)]) == 0
    assert "purged 1 dead letter(s)" in capsys.readouterr().out
    assert [e["id"] for e in listed(capsys, data)] == [second["id"]]
    assert main(["dlq", "purge", "--data", str(data)]) == 2
    assert main(["dlq", "purge", "--all", "--data", str(data)]) == 0
    assert "purged 1 dead letter(s)" in capsys.readouterr().out
    assert listed(capsys, data) == []
    assert main(["dlq", "purge", "--before", "yesterday", "--data", str(data)]) == 2
