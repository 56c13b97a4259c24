"""Every runtime error code raised in the source is documented, and docs/errors.md is up to date."""

from __future__ import annotations

import re
from pathlib import Path

from crossdock.engine.error_codes import ADMIN_CODES, ERROR_CODES, render_error_codes

REPO = Path(__file__).resolve().parents[2]
RAISED = re.compile(r'code ?= ?"((?:X12-)?[A-Z]{1,4}\d{3})"')
SOURCES = [REPO / "crossdock" / "engine", REPO / "crossdock" / "connectors", REPO / "crossdock" / "formats"]


def raised_codes() -> set[str]:
    found: set[str] = set()
    for folder in SOURCES:
        for path in folder.rglob("*.py"):
            if "x12" in path.parts and "formats" in path.parts:  # the codec's codes are in docs/x12.md
                continue
            found.update(RAISED.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_raised_code_is_documented() -> None:
    codes = raised_codes()
    assert {"D103", "M001", "FIL001", "SQL001"} <= codes  # the scan itself works
    assert codes - set(ERROR_CODES) == set()


def test_every_admin_answer_code_is_documented_with_its_status() -> None:
    text = (REPO / "crossdock" / "ops" / "admin.py").read_text(encoding="utf-8")
    answered = set(re.findall(r'problem\((\d{3}), "(ADM\d{3})"', text))
    assert ("405", "ADM405") in answered  # the scan itself works
    assert {(str(ADMIN_CODES[code][0]), code) for _, code in answered} == answered
    assert set(re.findall(r'code="(ADM\d{3})"', text)) <= set(ADMIN_CODES)


def test_docs_errors_md_is_generated_from_the_table() -> None:
    assert (REPO / "docs" / "errors.md").read_text(encoding="utf-8") == render_error_codes(), (
        "regenerate with: .venv/bin/python -m crossdock.engine.error_codes"
    )
