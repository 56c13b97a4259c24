"""`crossdock x12 inspect | validate | ack | overdue`, run through the module's own parser and main."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import anyio
import pytest

from crossdock.commands import x12 as command
from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock
from crossdock.engine.engine import Engine, embedded_stores
from crossdock.engine.plan import Plan
from crossdock.engine.services import Services
from crossdock.formats import x12

FIXTURES = Path(__file__).resolve().parents[1] / "formats" / "x12" / "fixtures"
ORDER = FIXTURES / "valid" / "850.004010.x12"


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """Parse `argv` as ``crossdock x12 ...`` would and run it: (exit code, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="crossdock")
    command.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["x12", *map(str, argv)])
    assert args.handler is command.main
    code = command.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_prints_each_value_with_the_path_a_map_reads(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", ORDER)
    lines = out.splitlines()
    assert code == 0 and lines[0] == str(ORDER)
    assert "  ISA06 = SUPPLIERCO" in lines and "    GS06 = 101" in lines
    assert "    set 850 0001: Purchase Order (004010)" in lines
    assert "      BEG03 = 4500012345" in lines
    at = lines.index('      N1[N101="ST"]')
    assert lines[at + 1:at + 3] == ['        N1[N101="ST"].N101 = ST', '        N1[N101="ST"].N102 = ACME DC']
    at = lines.index("      for each PO1 (2 of 2)")
    assert lines[at + 1:at + 3] == ["        PO101 = 2", "        PO102 = 4"]
    assert "          PID[PID01=\"F\"].PID05 = RED GADGET" in lines[at:]
    assert lines[-4:] == ["      CTT", "        CTT01 = 2", "        AMT01 = TT", "        AMT02 = 445"]


@pytest.mark.parametrize("name", sorted(path.name for path in (FIXTURES / "valid").glob("*.x12")))
def test_every_path_inspect_prints_outside_for_each_reads_its_value(capsys: pytest.CaptureFixture[str],
                                                                    name: str) -> None:
    code, out, _ = run(capsys, "inspect", FIXTURES / "valid" / name)
    ts = next(x12.read(FIXTURES / "valid" / name).sets())
    checked = 0
    inside_loop: int | None = None
    for line in out.splitlines():
        indent = len(line) - len(line.lstrip())
        if inside_loop is not None and indent <= inside_loop:
            inside_loop = None
        if line.strip().startswith("for each "):
            inside_loop = indent
        match = re.fullmatch(r" {6,}(\S+) = (.*)", line)
        if match and inside_loop is None:
            path, value = match.groups()
            assert ts.get(re.sub(r"(\d\d)_(\d)", r"\1-\2", path)) == value, line
            checked += 1
    assert code == 0 and checked > 5


def test_inspect_lists_the_issues_and_names_components_as_maps_do(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    text = ORDER.read_text().replace("REF*DP*042~", "REF*DP*042**ZZ>ABC~").replace("SE*23*", "SE*24*")
    path = tmp_path / "order.x12"
    path.write_text(text)
    code, out, _ = run(capsys, "inspect", path)
    assert code == 0
    assert "      REF04_1 = ZZ" in out and "      REF04_2 = ABC" in out
    assert out.splitlines()[-2:] == [
        "1 issue(s):",
        "  X12-E052 warning: SE01 says '24' segments, there are 23 (offset 635, line 25, segment 25, path SE01)"]


def test_inspect_exit_codes_for_files_that_cannot_be_read(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "inspect", tmp_path / "missing.x12")
    assert code == 2 and "cannot read" in err
    (tmp_path / "order.json").write_text('{"po": 1}')
    code, out, err = run(capsys, "inspect", tmp_path / "order.json")
    assert (code, out) == (1, "") and "X12-T001" in err


def test_validate_reports_code_segment_offset_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    messy = FIXTURES / "messy" / "ge_off_by_one.x12"
    code, out, _ = run(capsys, "validate", messy, ORDER)
    assert code == 0
    assert out.splitlines() == [
        f"{messy}:26: X12-E033 warning: GE01 says '2' transaction sets, there are 1 "
        "(segment 26, offset 639, line 26, path GE01)",
        f"{messy}: valid, 0 error(s), 1 warning(s)",
        f"{ORDER}: valid, 0 error(s), 0 warning(s)"]
    code, out, _ = run(capsys, "validate", "--strict", messy)
    assert code == 1 and out.splitlines()[-1] == f"{messy}: invalid, 1 error(s), 0 warning(s)"


def test_validate_as_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("hello")
    messy = FIXTURES / "messy" / "ge_off_by_one.x12"
    code, out, _ = run(capsys, "validate", "--strict", "--format", "json", messy, tmp_path / "note.txt")
    first, second = json.loads(out)
    assert code == 1
    assert first == {"file": str(messy), "readable": True, "valid": False, "issues": [
        {"code": "X12-E033", "severity": "error", "message": "GE01 says '2' transaction sets, there are 1",
         "offset": 639, "line": 26, "segment": 26, "path": "GE01"}]}
    assert (second["valid"], second["issues"][0]["code"], second["issues"][0]["offset"]) == (False, "X12-T001", 0)


def test_validate_exits_2_when_a_file_cannot_be_read(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "validate", ORDER, tmp_path / "missing.x12")
    assert code == 2 and out.splitlines()[-1] == f"{tmp_path / 'missing.x12'}: cannot read: No such file or directory"


def _segments(out: str) -> list[str]:
    """The acknowledgment printed, one segment per line, without the dates and times of the envelopes."""
    lines = [line.removesuffix("~") for line in out.splitlines()]
    return [re.sub(r"\*\d{6}\*\d{4}\*", "*DATE*TIME*", line) if line.startswith("ISA") else
            re.sub(r"\*\d{8}\*\d{4}\*", "*DATE*TIME*", line) if line.startswith("GS") else line for line in lines]


def test_ack_prints_the_997_crossdock_would_send(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ack", ORDER)
    assert code == 0 and _segments(out) == [
        "ISA*00*          *00*          *ZZ*BUYERCO        *ZZ*SUPPLIERCO     *DATE*TIME*U*00401*000000001*0*P*>",
        "GS*FA*BUYERCO*SUPPLIERCO*DATE*TIME*1*X*004010", "ST*997*0001", "AK1*PO*101", "AK2*850*0001", "AK5*A",
        "AK9*A*1*1*1", "SE*6*0001", "GE*1*1", "IEA*1*000000001"]
    assert x12.read(out.replace("\n", "").encode()).all_issues() == []


def test_ack_follows_the_version_and_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    five = FIXTURES / "valid" / "850.005010.x12"
    _, out, _ = run(capsys, "ack", five)
    assert _segments(out)[2:4] == ["ST*999*0001*005010X231A1", "AK1*PO*101*005010"]
    _, out, _ = run(capsys, "ack", five, "--ack", "997", "--errors-only")
    assert _segments(out)[2:6] == ["ST*997*0001", "AK1*PO*101*005010", "AK9*A*1*1*1", "SE*4*0001"]
    _, out, _ = run(capsys, "ack", ORDER, "--raw")
    assert out.count("\n") == 1 and out.count("~") == 10


def test_ack_answers_one_partner_of_a_file_and_says_when_there_is_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    two = FIXTURES / "messy" / "two_interchanges.x12"
    _, out, _ = run(capsys, "ack", two)
    assert [line for line in _segments(out) if line.startswith("AK1")] == ["AK1*PO*101", "AK1*PO*102"]
    code, out, err = run(capsys, "ack", two, "--partner-id", "SOMEONE")
    assert (code, out, err) == (0, "", f"{two}: nothing to acknowledge from SOMEONE\n")
    code, out, err = run(capsys, "ack", FIXTURES / "valid" / "997.004010.x12")
    assert (code, out) == (0, "") and "nothing to acknowledge" in err


def test_ack_with_ta1_answers_a_broken_interchange(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "broken.x12"
    path.write_text(ORDER.read_text().replace("IEA*1*000000101", "IEA*1*000000102"))
    code, out, _ = run(capsys, "ack", path, "--ta1", "--strict")
    assert code == 0 and _segments(out)[1:] == ["TA1*000000101*240115*0930*R*001", "IEA*0*000000001"]
    code, _, _ = run(capsys, "ack", tmp_path / "missing.x12")
    assert code == 2


# overdue -------------------------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "x12-850"


def _send_an_855(tmp_path: Path, clock: ManualClock) -> tuple[Path, Path, float]:
    """Run the Acme example on the ERP's acknowledgment: an 855 goes to Acme. (routes, data, acme's due)"""
    routes = tmp_path / "routes"
    shutil.copytree(EXAMPLE / "routes", routes)
    data = tmp_path / "data"
    (data / "erp" / "acknowledgments").mkdir(parents=True)
    shutil.copy(EXAMPLE / "erp-acknowledgments" / "erp-ack-4500012345.json", data / "erp" / "acknowledgments")
    plan = _run_routes(routes, data, clock)
    return routes, data, plan.partners["acme"].acknowledgment_due


def _run_routes(routes: Path, data: Path, clock: ManualClock) -> Plan:
    result = lint([routes])
    plan = result.plan
    assert plan is not None and not result.errors

    async def once() -> None:
        async with embedded_stores(data) as stores:
            services = Services(stores=stores, data_dir=data, clock=clock, partners=plan.partners)
            await Engine(plan, services).run(once=True, stop=anyio.Event())

    anyio.run(once)
    return plan


def test_overdue_reports_an_855_once_its_997_is_late_and_not_after_the_997(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock(1_700_000_000.0)  # 2023-11-14T22:13:20Z
    monkeypatch.setattr(command, "clock", clock)
    routes, data, due = _send_an_855(tmp_path, clock)
    [sent] = sorted((data / "edi" / "to-acme").glob("855-*.x12"))
    interchange = x12.read(sent.read_bytes()).interchanges[0]
    group, control = interchange.groups[0].control_number, interchange.groups[0].sets[0].control_number

    clock.advance(due - 1)
    assert run(capsys, "overdue", "--data", data) == (0, "no acknowledgment overdue\n", "")

    clock.advance(1 + 2 * 3600 + 5 * 60)
    code, out, _ = run(capsys, "overdue", "--data", data)
    assert code == 1
    assert out.splitlines() == [
        "PARTNER  GS06  ST02  SET  SENT AT               DUE AT                LATE",
        f"acme     {group:<4}  {control}  855  2023-11-14T22:13:20Z  2023-11-15T22:13:20Z  2h 5m",
        "1 set(s) overdue",
    ]
    code, out, _ = run(capsys, "overdue", "--data", data, "--format", "json")
    assert code == 1 and json.loads(out) == [
        {"partner": "acme", "group_control": group, "set_control": control, "set_id": "855",
         "sent_at": "2023-11-14T22:13:20Z", "due_at": "2023-11-15T22:13:20Z", "late_seconds": 2 * 3600 + 5 * 60}]
    assert run(capsys, "overdue", "--data", data, "--partner", "3pl") == (0, "no acknowledgment overdue from 3pl\n", "")

    # Acme's 997 arrives, late but in the end: reading it reconciles the 855.
    (data / "edi" / "from-acme").mkdir(parents=True, exist_ok=True)
    (data / "edi" / "from-acme" / "fa-777.x12").write_text(
        "ISA*00*          *00*          *ZZ*SUPPLIERCO     *ZZ*BUYERCO        *231116*0030*U*00401*000000777*0*P*>~"
        f"GS*FA*SUPPLIERCO*BUYERCO*20231116*0030*777*X*004010~ST*997*0001~AK1*PR*{group}~AK2*855*{control}~"
        "AK5*A~AK9*A*1*1*1~SE*6*0001~GE*1*777~IEA*1*000000777~")
    _run_routes(routes, data, clock)
    assert run(capsys, "overdue", "--data", data) == (0, "no acknowledgment overdue\n", "")
    code, out, _ = run(capsys, "overdue", "--data", data, "--format", "json")
    assert (code, json.loads(out)) == (0, [])


def test_overdue_refuses_a_folder_without_stores(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-data"
    code, out, err = run(capsys, "overdue", "--data", missing)
    assert (code, out) == (2, "") and "no crossdock stores" in err
    assert not missing.exists()  # looking did not create an empty database there
