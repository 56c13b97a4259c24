"""docs/language.md: its examples lint clean, its option reference is generated and up to date."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crossdock.dsl.docs import BEGIN, DOCS_PATH, END, duration_text, render_reference, updated
from crossdock.dsl.lint import lint
from crossdock.dsl.parser import keywords

TEXT = DOCS_PATH.read_text(encoding="utf-8")
ROUTE_BLOCKS = re.findall(r"^```route\n(.*?)^```$", TEXT, flags=re.M | re.S)


def test_the_reference_is_generated_and_up_to_date() -> None:
    assert TEXT.count(BEGIN) == 1 and TEXT.count(END) == 1
    assert render_reference() in TEXT, "regenerate it with: python -m crossdock.dsl.docs"
    assert updated(TEXT) == TEXT


def test_the_reference_documents_every_connector_and_format_option() -> None:
    from crossdock.connectors.base import connector_kinds, connector_spec
    from crossdock.formats.base import format_names, format_spec

    reference = render_reference()
    for kind in connector_kinds():
        assert f"### `{kind}` connector" in reference
        for option in connector_spec(kind).options:
            assert f"| `{option.name}` |" in reference
    for name in format_names():
        assert f"### `{name}` format" in reference
        for option in format_spec(name).options:
            assert f"| `{option.name}` |" in reference


def test_the_reference_shows_defaults_as_route_files_write_them() -> None:
    reference = render_reference()
    assert "| `check every` | duration | source | either | `2s` |" in reference
    assert "| `folder` | text in quotes | source, sink | either | **required** |" in reference


@pytest.mark.parametrize(("seconds", "text"), [(0.5, "500ms"), (2.0, "2s"), (90.0, "90s"), (60.0, "1m"),
                                               (3600.0, "1h"), (86400.0, "1d"), (1.5, "1.5s")])
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_there_are_complete_examples() -> None:
    assert len(ROUTE_BLOCKS) >= 5
    assert all(block.startswith("# Complete file") for block in ROUTE_BLOCKS)


@pytest.mark.parametrize("block", ROUTE_BLOCKS, ids=[f"example-{i}" for i in range(len(ROUTE_BLOCKS))])
def test_every_complete_example_lints_clean(block: str, tmp_path: Path) -> None:
    (tmp_path / "example.route").write_text(block, encoding="utf-8")
    diagnostics = lint([tmp_path]).diagnostics
    assert diagnostics == [], [str(d) for d in diagnostics]


def test_every_keyword_is_documented() -> None:
    code = " ".join(re.findall(r"`([^`\n]+)`", TEXT)) + " ".join(ROUTE_BLOCKS)
    missing = sorted(k for k in keywords() if not re.search(rf"\b{k}\b", code))
    assert missing == []
    listed = set(re.findall(r"`(\w+)`", TEXT[TEXT.index("The keywords of the language"):TEXT.index(BEGIN)]))
    assert keywords() <= listed


def test_links_to_the_function_library_and_the_diagnostic_codes() -> None:
    assert "(functions.md)" in TEXT and "(diagnostics.md)" in TEXT
    docs = DOCS_PATH.parent
    assert (docs / "functions.md").is_file() and (docs / "diagnostics.md").is_file()


def test_every_code_named_in_the_language_reference_exists() -> None:
    from crossdock.dsl.codes import CODES

    named = set(re.findall(r"\b([A-Z]{2,4}\d{3})\b", TEXT))
    assert named and named <= set(CODES)
