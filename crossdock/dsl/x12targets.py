"""Lint of maps that write X12 (`to x12 855`): every target must be an element, segment or loop of the set.

The map's targets are laid out as the builder will get them (a skeleton: keys, one instance per
`for each`, values None) and checked with the builder's own :func:`check_values`, so lint and the
runtime agree on what a map may write. Each problem (MAP015) points at the assignment that made it.
"""

from __future__ import annotations

import re
from typing import Any

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import DiagnosticBag, Span
from crossdock.formats.x12.builder import check_values
from crossdock.formats.x12.definitions import default_catalog

DEFAULT_VERSION = "004010"
_INDEX = re.compile(r"\[\d+\]")


def _skeleton(items: tuple[ast.MapItem, ...], prefix: tuple[str, ...], spans: dict[tuple[str, ...], Span]
              ) -> dict[str, Any]:
    level: dict[str, Any] = {}
    for item in items:
        if isinstance(item, ast.MapWhen):
            for _, body in item.clauses:
                level.update(_skeleton(body, prefix, spans))
            if item.otherwise:
                level.update(_skeleton(item.otherwise, prefix, spans))
            continue
        if not isinstance(item, ast.Assign | ast.AssignEach | ast.AssignObject):
            continue
        key = item.target.dotted
        spans[(*prefix, key)] = item.target.span
        if isinstance(item, ast.AssignEach):
            level[key] = [_skeleton(item.items, (*prefix, key), spans)]
        elif isinstance(item, ast.AssignObject):
            level[key] = _skeleton(item.items, (*prefix, key), spans)
        else:
            level[key] = None
    return level


def check_x12_target(definition: ast.MapDef, bag: DiagnosticBag) -> None:
    """Report (MAP015) every target of a `to x12 SET` map that the set cannot take."""
    numbers = [str(t.value) if isinstance(t, ast.NumberLit) else t.value
               for t in definition.target.args if isinstance(t, ast.NumberLit | ast.StringLit)]
    if not numbers:
        bag.error("MAP015", "a map to X12 names its transaction set", definition.target.span,
                  "for example: to x12 855")
        return
    version = numbers[1] if len(numbers) > 1 else DEFAULT_VERSION
    set_definition = default_catalog().definition(numbers[0], version)
    if set_definition is None:
        bag.error("MAP015", f"there is no definition of X12 {numbers[0]} ({version}) in schemas/x12",
                  definition.target.span)
        return
    spans: dict[tuple[str, ...], Span] = {}
    skeleton = _skeleton(definition.items, (), spans)
    for problem in check_values(skeleton, set_definition):
        where = tuple(p for p in _INDEX.sub("", problem.path).split(".") if p)
        span = spans.get((*where, problem.key)) or spans.get(where) or definition.target.span
        bag.error("MAP015", f"{problem.code}: {problem.message}", span, problem.hint)
