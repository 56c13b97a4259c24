"""`crossdock test`: golden files of the demo map, diffs, missing and undecodable inputs, --update."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from crossdock.cli import main
from crossdock.engine.maptest import fixed_functions, slug

REPO = Path(__file__).resolve().parents[2]

SMALL_MAP = """\
map "Small order"
  from json
  to json
  po = concat("PO-", number)
  total = decimal(qty) * decimal(price)
{tests}end
"""
GOLDEN = '{\n  "po": "PO-1",\n  "total": "12.30"\n}\n'


def crossdock_test(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = main(["test", *map(str, args)])
    return code, capsys.readouterr().out


def small_project(tmp_path: Path, tests: str = "") -> Path:
    """A route file with one small map, and its fixture folder (empty)."""
    (tmp_path / "small.route").write_text(SMALL_MAP.format(tests=tests), encoding="utf-8")
    folder = tmp_path / "fixtures" / "small-order"
    folder.mkdir(parents=True)
    return folder


def test_the_demo_map_passes_its_golden_files(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = crossdock_test(capsys, REPO / "routes")
    summary = out.splitlines()[-1]
    passed = int(re.fullmatch(r"(\d+) passed, 0 failed", summary).group(1))  # type: ignore[union-attr]
    assert passed >= 3
    assert code == 0
    for number in ("1001", "1002", "1003"):
        assert f"PASS map 'Web order to Order' case 'order-{number}'" in out


def test_the_demo_goldens_hold_the_hand_checked_orders() -> None:
    folder = REPO / "routes" / "fixtures" / slug("Web order to Order")
    golden = {p.name.split(".")[0]: json.loads(p.read_text()) for p in folder.glob("*.expected.json")}
    first = golden["order-1001"]
    assert [(line["unit"], line["amount"]) for line in first["lines"]] == [("each", "12.30"), ("case", "55.00")]
    assert (first["subtotal"], first["shipping"], first["tax"], first["total"]) == ("67.30", "7.50", "5.93", "80.73")
    assert (first["ship_from"], first["currency"], first["order_date"]) == ("DAL", "USD", "2026-11-20")
    second = golden["order-1002"]
    assert (second["ship_from"], second["lines"][0]["unit"], second["total"]) == ("RNO", "pack", "52.68")
    assert second["ship_to"]["address"]["line2"] == "Suite 3"
    third = golden["order-1003"]
    assert (third["ship_from"], third["currency"], third["lines"][0]["unit"]) == ("UNASSIGNED", "USD", "each")
    assert (third["subtotal"], third["tax"], third["shipping"], third["total"]) == ("41.00", "0", "0", "41.00")


def test_slug_is_the_fixture_folder_name() -> None:
    assert slug("Web order to Order") == "web-order-to-order"
    assert slug("X12 850 -> Order (v2)") == "x12-850-order-v2"


def test_a_wrong_golden_fails_with_a_unified_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = small_project(tmp_path)
    (folder / "one.input.json").write_text('{"number": "1", "qty": 3, "price": "4.10"}', encoding="utf-8")
    (folder / "one.expected.json").write_text(GOLDEN.replace("12.30", "12.3"), encoding="utf-8")
    code, out = crossdock_test(capsys, tmp_path)
    assert code == 1
    assert out.splitlines()[-1] == "0 passed, 1 failed"
    assert f"FAIL map 'Small order' case 'one' ({folder / 'one.input.json'})" in out
    diff = [line.removeprefix("    ") for line in out.splitlines() if line.startswith("    ")]
    assert diff == [
        f"--- expected {folder / 'one.expected.json'}",
        "+++ actual",
        "@@ -1,4 +1,4 @@",
        " {",
        '   "po": "PO-1",',
        '-  "total": "12.3"',
        '+  "total": "12.30"',
        " }",
    ]


def test_a_number_in_the_golden_is_not_the_text_crossdock_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = small_project(tmp_path)
    (folder / "one.input.json").write_text('{"number": "1", "qty": 3, "price": "4.10"}', encoding="utf-8")
    (folder / "one.expected.json").write_text(GOLDEN.replace('"12.30"', "12.30"), encoding="utf-8")
    code, out = crossdock_test(capsys, tmp_path)
    assert code == 1
    assert '-  "total": 12.30' in out and '+  "total": "12.30"' in out


def test_a_matching_golden_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = small_project(tmp_path)
    (folder / "one.input.json").write_text('{"number": "1", "qty": 3, "price": "4.10"}', encoding="utf-8")
    (folder / "one.expected.json").write_text(GOLDEN, encoding="utf-8")
    code, out = crossdock_test(capsys, tmp_path)
    assert (code, out.splitlines()[-1]) == (0, "1 passed, 0 failed")


def test_a_test_block_whose_input_is_missing_is_tst001_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    block = '  test "gone"\n    input "fixtures/nowhere.json"\n    expect "fixtures/nowhere.expected.json"\n  end\n'
    small_project(tmp_path, tests=block)
    code, out = crossdock_test(capsys, tmp_path)
    assert code == 1
    assert out.splitlines()[-1] == "0 passed, 1 failed"
    (problem,) = [line for line in out.splitlines() if "TST001" in line]
    assert problem.startswith(f"{tmp_path / 'small.route'}:6:")
    assert "test 'gone': no input file" in problem


def test_a_test_block_runs_its_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    block = '  test "block case"\n    input "samples/in.json"\n    expect "samples/out.json"\n  end\n'
    small_project(tmp_path, tests=block)
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "in.json").write_text('{"number": "1", "qty": "3", "price": "4.10"}', encoding="utf-8")
    (tmp_path / "samples" / "out.json").write_text(GOLDEN, encoding="utf-8")
    code, out = crossdock_test(capsys, tmp_path)
    assert "PASS map 'Small order' case 'block case'" in out
    assert (code, out.splitlines()[-1]) == (0, "1 passed, 0 failed")


def test_a_test_block_with_unknown_settings_is_tst002(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small_project(tmp_path, tests='  test "odd"\n    input "a.json"\n    expected "b.json"\n  end\n')
    code, out = crossdock_test(capsys, tmp_path)
    assert code == 1
    assert "TST002 test 'odd' has unknown setting(s): expected" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed"


def test_an_input_that_cannot_be_decoded_fails_with_the_decode_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = small_project(tmp_path)
    shutil.copy(REPO / "examples/webstore-orders/order-1004-truncated.json", folder / "cut.input.json")
    (folder / "cut.expected.json").write_text(GOLDEN, encoding="utf-8")
    code, out = crossdock_test(capsys, tmp_path)
    assert code == 1
    assert "DecodeError D103: invalid JSON" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed"


def test_a_map_error_fails_the_case_with_the_map_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = small_project(tmp_path)
    (folder / "bad.input.json").write_text('{"number": "1", "qty": "three", "price": "4.10"}', encoding="utf-8")
    (folder / "bad.expected.json").write_text(GOLDEN, encoding="utf-8")
    code, out = crossdock_test(capsys, tmp_path)
    assert code == 1
    assert f'MapError M001: {tmp_path / "small.route"}:5:3: decimal(): "three" is not a number' in out


def test_update_writes_the_golden_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = small_project(tmp_path)
    (folder / "new.input.json").write_text('{"number": "1", "qty": 3, "price": "4.10"}', encoding="utf-8")
    (folder / "old.input.json").write_text('{"number": "1", "qty": 3, "price": "4.10"}', encoding="utf-8")
    (folder / "old.expected.json").write_text('{"po": "stale"}\n', encoding="utf-8")

    code, out = crossdock_test(capsys, tmp_path)
    assert code == 1
    assert "TST001 no expected file" in out and out.splitlines()[-1] == "0 passed, 2 failed"

    code, out = crossdock_test(capsys, tmp_path, "--update")
    assert code == 0
    assert f"UPDATED map 'Small order' case 'new': wrote {folder / 'new.expected.json'}" in out
    assert (folder / "new.expected.json").read_text(encoding="utf-8") == GOLDEN
    assert (folder / "old.expected.json").read_text(encoding="utf-8") == GOLDEN

    code, out = crossdock_test(capsys, tmp_path)
    assert (code, out.splitlines()[-1]) == (0, "2 passed, 0 failed")


def test_update_does_not_hide_a_failing_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = small_project(tmp_path)
    (folder / "bad.input.json").write_text('{"number": "1", "qty": "x", "price": "1"}', encoding="utf-8")
    code, out = crossdock_test(capsys, tmp_path, "--update")
    assert code == 1
    assert not (folder / "bad.expected.json").exists()
    assert out.splitlines()[-1] == "0 passed, 1 failed"


def test_routes_that_do_not_lint_run_no_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.route").write_text('map "m"\n  from json\n  to json\n  x = \nend\n', encoding="utf-8")
    code, out = crossdock_test(capsys, tmp_path)
    assert code == 1
    assert out.splitlines()[-1] == "0 passed, 0 failed (fix the errors above first)"


def test_map_tests_have_a_fixed_clock_and_uuids() -> None:
    first, second = fixed_functions(), fixed_functions()
    assert first.clock.now() == second.clock.now() == 1_767_225_600.0
    assert [str(first.uuid4()), str(first.uuid4())] == [str(second.uuid4()), str(second.uuid4())]
    assert str(fixed_functions().uuid4()) == "00000000-0000-4000-8000-000000000001"
