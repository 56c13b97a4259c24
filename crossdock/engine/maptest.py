"""`crossdock test`: runs maps on sample files and compares with golden files, with no live system.

A case comes from one of two places:

- a `test "name" input "file" expect "file" end` block inside a map (paths relative to the route file);
- the folder convention: `fixtures/<map-slug>/<case>.input.<ext>` next to `<case>.expected.json`, where
  `fixtures/` sits beside the route file that defines the map and `<map-slug>` is the map name in
  lower case with every run of other characters turned into `-` ("Web order to Order" ->
  `web-order-to-order`).

The input is decoded with the map's source format, the map runs with a fixed clock and a fixed
sequence of UUIDs (so `now()`, `today()` and `uuid()` are reproducible), the output is validated
against the target model and encoded as canonical JSON, then compared with the golden file as JSON
values: "12.5" and "12.50" differ, and so do 1 and true.

A case fails, with a reason, when its input cannot be read or decoded (the format's error code,
such as D103), the map fails (M001 with the map line) or its output is invalid (V001 naming the
field), the golden file is missing (TST001) or not JSON, or the output differs from it (a unified
diff, expected then actual). A `test` block whose input file does not exist is not run: it is
reported as TST001 and counts as failed. `crossdock test --update` writes the actual output into
the golden file of every case that ran but did not match, including a missing golden file.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from crossdock.dsl import ast
from crossdock.engine.clock import ManualClock
from crossdock.engine.errors import CrossdockError
from crossdock.engine.mapping.compiler import CompiledMap
from crossdock.engine.mapping.functions import FunctionContext
from crossdock.engine.x12.inbound import transaction_sets
from crossdock.formats.base import format_names, load_format

FIXED_TIME = 1_767_225_600.0  # 2026-01-01T00:00:00Z: what now() returns in map tests


def fixed_functions() -> FunctionContext:
    """The clock and UUID source of map tests: 2026-01-01T00:00:00Z, then UUIDs numbered from 1."""
    numbers = itertools.count(1)
    return FunctionContext(clock=ManualClock(FIXED_TIME), uuid4=lambda: uuid.UUID(int=next(numbers), version=4))


def slug(name: str) -> str:
    """The folder name of a map's fixtures."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass
class Case:
    """One input file and its golden output for a map."""

    map_name: str
    name: str
    input: Path
    expected: Path


@dataclass
class CaseResult:
    """The outcome of one case: passed, or why not (an error or a diff)."""

    case: Case
    passed: bool
    detail: str = ""
    actual: bytes | None = None


def discover(maps: dict[str, CompiledMap]) -> tuple[list[Case], list[str]]:
    """Every case of every map, and problems found while looking (a missing file, a bad setting)."""
    cases: list[Case] = []
    problems: list[str] = []
    for name, compiled in maps.items():
        definition = compiled.definition
        base = Path(definition.span.file).parent
        for test in definition.tests:
            case, problem = _from_block(name, test, base)
            if case is not None:
                cases.append(case)
            if problem:
                problems.append(problem)
        cases.extend(_from_folder(name, base / "fixtures" / slug(name)))
    return cases, problems


def _from_block(map_name: str, test: ast.MapTest, base: Path) -> tuple[Case | None, str | None]:
    settings = {key.text: value for key, value in test.settings}
    unknown = sorted(set(settings) - {"input", "expect"})
    where = str(test.span)
    if unknown:
        return None, f"{where}: TST002 test '{test.name}' has unknown setting(s): {', '.join(unknown)}"
    if "input" not in settings or "expect" not in settings:
        return None, f"{where}: TST002 test '{test.name}' needs both `input \"file\"` and `expect \"file\"`"
    case = Case(map_name, test.name, base / settings["input"].value, base / settings["expect"].value)
    if not case.input.is_file():
        return None, f"{where}: TST001 test '{test.name}': no input file {case.input}"
    return case, None  # a missing golden file fails the case, and --update writes it


def _from_folder(map_name: str, folder: Path) -> Iterator[Case]:
    if not folder.is_dir():
        return
    for source in sorted(folder.glob("*.input.*")):
        case_name = source.name.split(".input.")[0]
        yield Case(map_name, case_name, source, folder / f"{case_name}.expected.json")


# How a decoded input file becomes what a map reads, for formats whose documents hold several units:
# an X12 file holds transaction sets (the route says `for each transaction`). Several units give a
# golden file holding a JSON list of outputs.
MAP_INPUTS: dict[str, Callable[[Any], list[Any]]] = {"x12": transaction_sets}


def run_case(compiled: CompiledMap, case: Case) -> CaseResult:
    """Run one case; never raises for a map or data problem (that is a failed case)."""
    try:
        data = case.input.read_bytes()
    except OSError as error:
        return CaseResult(case, False, f"cannot read {case.input}: {error.strerror}")
    source_format = compiled.source_kind if compiled.source_kind in format_names() else "json"
    try:
        document = load_format(source_format).decode(data, {})
        inputs = MAP_INPUTS[source_format](document) if source_format in MAP_INPUTS else [document]
        outputs = [compiled.run_validated(one, fixed_functions()) for one in inputs]
        output = outputs[0] if len(outputs) == 1 else outputs
        actual_bytes = load_format("json").encode(output, {"pretty": True})
    except CrossdockError as error:
        return CaseResult(case, False, f"{type(error).__name__} {error.code}: {error}")
    try:
        expected_text = case.expected.read_text(encoding="utf-8")
    except FileNotFoundError:
        return CaseResult(case, False, f"TST001 no expected file {case.expected}; `crossdock test --update` "
                          "writes it from the actual output", actual_bytes)
    except (OSError, UnicodeDecodeError) as error:
        return CaseResult(case, False, f"cannot read {case.expected}: {error}", actual_bytes)
    try:
        expected = json.loads(expected_text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        return CaseResult(case, False, f"{case.expected} is not JSON: {error.msg} at line {error.lineno}",
                          actual_bytes)
    actual = json.loads(actual_bytes, parse_float=Decimal)
    if _same(actual, expected):
        return CaseResult(case, True, actual=actual_bytes)
    diff = difflib.unified_diff(
        _pretty(expected).splitlines(), _pretty(actual).splitlines(),
        fromfile=f"expected {case.expected}", tofile="actual", lineterm="",
    )
    return CaseResult(case, False, "\n".join(diff), actual_bytes)


def _same(a: Any, b: Any) -> bool:
    """JSON equality that tells 12.5 from 12.50 (money digits matter) and 1 from true."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Decimal):
        return str(a) == str(b)
    return bool(a == b)


# json.dumps cannot write a Decimal as a bare number: it is written as this marker, then unquoted, so
# that the diff shows 12.50 (a number in the golden file) apart from "12.50" (text, as crossdock writes).
_NUMBER_MARK = "\u0000number:"
_MARKED = re.compile(r'"\\u0000number:([^"]*)"')


def _pretty(value: Any) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, default=lambda number: f"{_NUMBER_MARK}{number}")
    return _MARKED.sub(r"\1", text)
