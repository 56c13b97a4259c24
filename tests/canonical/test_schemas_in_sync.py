"""The committed JSON Schemas in schemas/canonical match the models, byte for byte."""

from __future__ import annotations

import json

import pytest

from crossdock.canonical import DOCUMENTS
from crossdock.canonical.schemas import SCHEMAS_DIR, file_name, rendered

REGENERATE = "regenerate with: .venv/bin/python -m crossdock.canonical.schemas"


@pytest.mark.parametrize("name", sorted(rendered()))
def test_committed_schema_matches_the_models(name: str) -> None:
    path = SCHEMAS_DIR / name
    assert path.is_file(), f"{path} is missing; {REGENERATE}"
    assert path.read_bytes() == rendered()[name].encode("utf-8"), f"{path} is out of date; {REGENERATE}"


def test_no_stale_schema_files() -> None:
    expected = {file_name(model) for model in DOCUMENTS}
    present = {p.name for p in SCHEMAS_DIR.glob("*.schema.json")}
    assert present == expected, f"unexpected schema files {sorted(present - expected)}; remove them"


def test_money_is_published_as_a_decimal_string() -> None:
    schema = json.loads(rendered()["Invoice.schema.json"])
    total = schema["properties"]["total"]
    assert total["type"] == "string"
    assert total["pattern"] == r"^[0-9]+(\.[0-9]+)?$"
    assert schema["additionalProperties"] is False
