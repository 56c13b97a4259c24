"""`crossdock lint` as CI and analysts see it: text with a caret, JSON, SARIF 2.1.0, and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossdock.cli import main

ROOT = Path(__file__).resolve().parents[2]

BROKEN = (
    'connection "erp-api" is file\n'
    '  folder "in"\n'
    "end\n"
    "\n"
    'route "orders"\n'
    '  from file "erp-apii"\n'
    "  read json\n"
    "  when kind = 1\n"
    "    to file\n"
    '      folder "out"\n'
    "  end\n"
    "  dead letter to store\n"
    "end\n"
)


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    folder = tmp_path / "routes"
    folder.mkdir()
    (folder / "orders.route").write_text(BROKEN, encoding="utf-8")
    return folder


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["lint", *args])
    return code, capsys.readouterr().out


def test_the_demo_routes_lint_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, str(ROOT / "routes"))
    assert code == 0
    assert out == "0 error(s), 0 warning(s)\n"


def test_text_output_has_position_source_line_caret_and_hint(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, str(broken))
    assert code == 1
    lines = out.splitlines()
    path = broken / "orders.route"
    head = f"{path}:6:13: NAME001 error: unknown connection 'erp-apii'"
    index = lines.index(head)
    assert lines[index + 1] == '      from file "erp-apii"'
    # the caret sits under the connection name (column 13) and spans it
    assert lines[index + 2] == "    " + " " * 12 + "^" * len('"erp-apii"')
    assert lines[index + 3] == "    hint: did you mean 'erp-api'?"
    warning = f"{path}:8:3: RTE002 warning: messages that match no 'when' are dead-lettered"
    assert warning in lines
    assert lines[-1] == "1 error(s), 1 warning(s)"


def test_caret_under_a_whole_statement_covers_the_statement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "t.route").write_text(
        'route "r"\n  from file\n    folder "in"\n  to file\n    folder "out"\n'
        "  retry 3 times   # twice\n  retry 5 times\n  dead letter to store\nend\n", encoding="utf-8")
    code, out = run(capsys, str(tmp_path))
    assert code == 1
    lines = out.splitlines()
    index = lines.index(f"{tmp_path / 't.route'}:7:3: POL004 error: this route sets 'retry' twice")
    assert lines[index + 1:index + 4] == ["      retry 5 times", "      " + "^" * len("retry 5 times"),
                                          "    hint: the first is at line 6"]


def test_warnings_alone_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.route").write_text(
        'route "r"\n  from file\n    folder "in"\n  read json\n  when a = 1\n    to file\n      folder "o"\n'
        "  end\n  dead letter to store\nend\n", encoding="utf-8")
    code, out = run(capsys, str(tmp_path))
    assert code == 0
    assert "RTE002 warning" in out and out.endswith("0 error(s), 1 warning(s)\n")


def test_missing_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    code, out = run(capsys, str(missing))
    assert code == 2
    assert out.splitlines()[0] == f"{missing}: IO001 error: no such file or folder"


def test_folder_without_route_files_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, str(tmp_path))
    assert code == 2
    assert "IO003" in out


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--format", "xml", "routes"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["lint"]) == 2


def test_json_output(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--format", "json", str(broken))
    assert code == 1
    report = json.loads(out)
    assert (report["errors"], report["warnings"]) == (1, 1)
    first, second = report["diagnostics"]
    assert first == {
        "code": "NAME001",
        "severity": "error",
        "message": "unknown connection 'erp-apii'",
        "file": str(broken / "orders.route"),
        "line": 6,
        "column": 13,
        "end_line": 6,
        "end_column": 23,
        "hint": "did you mean 'erp-api'?",
    }
    assert (second["code"], second["severity"], second["line"], second["column"]) == ("RTE002", "warning", 8, 3)


def test_json_output_when_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--format", "json", str(ROOT / "routes"))
    assert code == 0
    assert json.loads(out) == {"diagnostics": [], "errors": 0, "warnings": 0}


def test_sarif_output(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--format", "sarif", str(broken))
    assert code == 1
    log = json.loads(out)
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (sarif_run,) = log["runs"]
    rules = sarif_run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == ["NAME001", "RTE002"]
    assert rules[0]["shortDescription"]["text"] == "unknown connection"
    error, warning = sarif_run["results"]
    assert (error["ruleId"], error["level"], rules[error["ruleIndex"]]["id"]) == ("NAME001", "error", "NAME001")
    assert "did you mean 'erp-api'?" in error["message"]["text"]
    location = error["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == (broken / "orders.route").as_posix()
    assert location["region"] == {"startLine": 6, "startColumn": 13, "endLine": 6, "endColumn": 23}
    assert (warning["ruleId"], warning["level"]) == ("RTE002", "warning")
    assert warning["locations"][0]["physicalLocation"]["region"]["startLine"] == 8


def test_sarif_for_a_missing_path_has_no_region(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--format", "sarif", str(tmp_path / "nowhere"))
    assert code == 2
    (result,) = json.loads(out)["runs"][0]["results"]
    assert result["ruleId"] == "IO001"
    assert "region" not in result["locations"][0]["physicalLocation"]


def test_require_env(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t.route").write_text(
        'route "r"\n  from file\n    folder env "CROSSDOCK_TEST_INBOX"\n  to file\n    folder "out"\n'
        "  dead letter to store\nend\n", encoding="utf-8")
    monkeypatch.delenv("CROSSDOCK_TEST_INBOX", raising=False)
    assert run(capsys, str(tmp_path))[0] == 0
    code, out = run(capsys, "--require-env", str(tmp_path))
    assert code == 1
    assert f"{tmp_path / 't.route'}:3:12: ENV001 error: environment variable 'CROSSDOCK_TEST_INBOX' is not set" in out
    monkeypatch.setenv("CROSSDOCK_TEST_INBOX", "in")
    assert run(capsys, "--require-env", str(tmp_path))[0] == 0


def test_syntax_error_in_one_file_does_not_hide_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.route").write_text('route "r"\n  from file\n', encoding="utf-8")
    (tmp_path / "b.route").write_text('table t\n  "x" -> "y"\n  "x" -> "z"\nend\n', encoding="utf-8")
    code, out = run(capsys, "--format", "json", str(tmp_path))
    assert code == 1
    found = [(Path(d["file"]).name, d["code"], d["line"], d["column"]) for d in json.loads(out)["diagnostics"]]
    assert found == [("a.route", "DSL006", 1, 1), ("b.route", "DUP002", 3, 3)]
