"""docs/x12.md: every code documented with its acknowledgment codes, every example runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crossdock.formats import x12
from crossdock.formats.x12.codes import AckCodes

ROOT = Path(__file__).resolve().parents[3]
PAGE = (ROOT / "docs" / "x12.md").read_text(encoding="utf-8")
ROWS = {match.group(1): match.group(0) for match in re.finditer(r"^\| (X12-[TESDG]\d{3}) \|.*$", PAGE, re.M)}
EXAMPLES = re.findall(r"```python\n(.*?)```", PAGE, re.S)


def _ack_text(ack: AckCodes) -> str:
    parts = [f"{name.upper()} {value}" for name, value in
             (("ta1", ack.ta1), ("ak9", ack.ak9), ("ak5", ack.ak5), ("ak3", ack.ak3), ("ak4", ack.ak4)) if value]
    return ", ".join(parts) or "-"


@pytest.mark.parametrize("code", sorted(x12.CODES))
def test_every_code_is_documented_with_its_acknowledgment(code: str) -> None:
    assert code in ROWS, f"{code} is missing from docs/x12.md"
    assert ROWS[code].rstrip().endswith(f"| {_ack_text(x12.CODES[code].ack)} |")


def test_the_page_documents_no_code_the_codec_lacks() -> None:
    assert set(ROWS) == set(x12.CODES)


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_examples_run(number: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    exec(compile(EXAMPLES[number], f"docs/x12.md example {number + 1}", "exec"), namespace)
    assert len(EXAMPLES) >= 5
