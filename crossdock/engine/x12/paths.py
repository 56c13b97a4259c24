"""X12 paths in the route language: `BEG03`, `N1[N101 = "ST"].N102`, `for each PO1`, `ISA06`.

The map compiler hands every path of a map `from x12 ...` (and of route steps after `read x12`) to
:class:`X12PathCompiler`, which turns the AST path into a codec path (crossdock.formats.x12.paths),
checks it against the set definition when one is known (MAP013 malformed, MAP014 unknown segment,
loop or element), and returns a getter.

What a path reads:

- an element path (`BEG03`, `N1[N101 = "ST"].N104`, `REF04_2` for a component) gives the value, or a
  list when several segments match (so `sum(PO1.PO102)` adds every line), or None;
- a loop or segment path (`PO1`, `HL[HL03 = "I"]`, `REF`) gives the list of loops or segments, for
  `for each` and `count()`;
- each step finds the nearest matches: those among the current loop's own children if there are any,
  else one level further down, and so on; so `DTM02` at the top of an 850 reads the header's DTM, not
  a line's, and `HL[HL03 = "I"]` still finds items deep in a shipment's hierarchy;
- inside `for each` and `object from`, a path looks in the current loop first, then in the whole
  transaction set, so a line can read `CUR02` or `BEG03` of its order;
- `ISA06`, `GS02`... read the envelope the set arrived in; on a whole document (after `read x12`, before
  `for each transaction`) `transaction` gives every transaction set but 997s and 999s (the engine
  reconciles those with what was sent) and `ISA..`/`GS..` read the first interchange and group.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import did_you_mean
from crossdock.engine.mapping.expressions import CompileEnv, Getter, Scope
from crossdock.formats.x12 import paths as x12paths
from crossdock.formats.x12.acks import ACKNOWLEDGMENT_SETS
from crossdock.formats.x12.definitions import SetDefinition
from crossdock.formats.x12.segment import Segment
from crossdock.formats.x12.tree import Document, Loop, TransactionSet

TRANSACTIONS = ("transaction", "transactions")
ENVELOPE = ("ISA", "GS")
_COMPONENT = re.compile(r"^([A-Z][A-Z0-9]{1,2}\d\d)_(\d+)$")
_ELEMENT = re.compile(r"^([A-Z][A-Z0-9]{1,2})(\d\d)(?:_(\d+))?$")


class X12PathCompiler:
    """Compiles paths over X12 trees; `definition` (when known) lets lint check segment and element ids."""

    def __init__(self, definition: SetDefinition | None = None) -> None:
        self.definition = definition

    def compile_path(self, path: ast.Path, env: CompileEnv) -> Getter | None:
        first = path.steps[0]
        if first.name in TRANSACTIONS and len(path.steps) == 1 and first.qualifier is None:
            return _transactions
        if first.name[:3] in ENVELOPE or first.name[:2] in ENVELOPE:
            return self._envelope(path, env)
        text = self._text(path, env)
        if text is None:
            return None
        try:
            parsed = x12paths.parse_path(text)
        except x12paths.PathError as error:
            env.bag.error("MAP013", f"not an X12 path: {error}", path.span,
                          'write segments and elements as BEG03, N1[N101 = "ST"].N104, REF04_2')
            return None
        self._check(path, parsed, env)
        if parsed.element is None:
            return _nodes_getter(parsed)
        return _values_getter(parsed)

    def _text(self, path: ast.Path, env: CompileEnv) -> str | None:
        parts: list[str] = []
        for step in path.steps:
            name = _COMPONENT.sub(r"\1-\2", step.name)
            if step.qualifier is not None:
                conditions = _conditions(step.qualifier)
                if conditions is None:
                    env.bag.error("MAP013", "an X12 condition compares an element with a value", step.qualifier.span,
                                  'for example: N1[N101 = "ST"], or several joined with and')
                    return None
                name += "[" + ", ".join(conditions) + "]"
            parts.append(name)
        return ".".join(parts)

    def _check(self, path: ast.Path, parsed: x12paths.Path, env: CompileEnv) -> None:
        definition = self.definition
        if definition is None:
            return
        known = set(definition.segments) | definition.loop_ids()
        for step, node in zip(parsed.steps, path.steps, strict=False):
            if step.name not in known:
                env.bag.error("MAP014", f"the {definition.id} ({definition.version}) definition has no segment or "
                              f"loop '{step.name}'", node.span, did_you_mean(step.name, known))
                return
            for condition in step.conditions:
                self._check_element(condition.element, node, env)
        if parsed.element is not None:
            self._check_element(parsed.element, path.steps[-1], env)

    def _check_element(self, element: x12paths.ElementRef, node: ast.PathStep, env: CompileEnv) -> None:
        definition = self.definition
        assert definition is not None
        segment = definition.segments.get(element.segment)
        if segment is None:
            env.bag.error("MAP014", f"the {definition.id} ({definition.version}) definition has no segment "
                          f"'{element.segment}'", node.span, did_you_mean(element.segment, definition.segments))
        elif element.position > len(segment.elements):
            env.bag.error("MAP014", f"segment {element.segment} has {len(segment.elements)} elements, not "
                          f"{element.position}", node.span)

    def _envelope(self, path: ast.Path, env: CompileEnv) -> Getter | None:
        step = path.steps[0]
        match = _ELEMENT.match(step.name)
        if len(path.steps) != 1 or step.qualifier is not None or match is None or match.group(1) not in ENVELOPE:
            env.bag.error("MAP013", f"'{path.dotted}' is not an envelope element", path.span,
                          "write ISA06, ISA13, GS02, GS06...")
            return None
        segment_id, position = match.group(1), int(match.group(2))

        def envelope(scope: Scope) -> Any:
            segment = _envelope_segment(scope.current, scope.root, segment_id)
            if segment is None:
                return None
            return segment.value(position).strip() or None

        return envelope


def _conditions(node: ast.Expr) -> list[str] | None:
    if isinstance(node, ast.Binary) and node.op == "and":
        left, right = _conditions(node.left), _conditions(node.right)
        return None if left is None or right is None else left + right
    if not (isinstance(node, ast.Binary) and node.op in ("=", "!=")):
        return None
    element, value = node.left, node.right
    if not (isinstance(element, ast.Path) and len(element.steps) == 1 and isinstance(value, ast.Literal)):
        return None
    if not isinstance(value.value, str | Decimal) or '"' in str(value.value):
        return None
    name = _COMPONENT.sub(r"\1-\2", element.steps[0].name)
    return [f'{name} {node.op} "{value.value}"']


def _envelope_segment(current: Any, root: Any, segment_id: str) -> Segment | None:
    for value in (current, root):
        if isinstance(value, TransactionSet):
            return value.isa if segment_id == "ISA" else value.gs
        if isinstance(value, Document) and value.interchanges:
            interchange = value.interchanges[0]
            if segment_id == "ISA":
                return interchange.isa
            return interchange.groups[0].gs if interchange.groups else None
    return None


def _transactions(scope: Scope) -> Any:
    # 997s and 999s are not business documents: the engine reconciles them with what was sent
    # when they are read, so `for each transaction` goes over the others only
    document = scope.current
    if isinstance(document, Document):
        return [ts for ts in document.sets() if ts.set_id not in ACKNOWLEDGMENT_SETS]
    return [document] if isinstance(document, TransactionSet) else None


def _one_or_many(found: list[Any]) -> Any:
    if not found:
        return None
    return found[0] if len(found) == 1 else found


def _matches(node: Segment | Loop, step: x12paths.Step) -> bool:
    if isinstance(node, Loop):
        return node.id == step.name and all(
            any(condition.holds(segment) for segment in x12paths.own_segments(node, condition.element.segment))
            for condition in step.conditions)
    return node.id == step.name and all(
        condition.element.segment == node.id and condition.holds(node) for condition in step.conditions)


def _nearest(loop: Loop, step: x12paths.Step) -> list[Segment | Loop]:
    """The matches of `step` at the shallowest depth below `loop` that has any."""
    level: list[Segment | Loop] = list(loop.children)
    while level:
        found = [node for node in level if _matches(node, step)]
        if found:
            return found
        level = [child for node in level if isinstance(node, Loop) for child in node.children]
    return []


def _select(start: Loop, parsed: x12paths.Path) -> list[Segment | Loop]:
    nodes: list[Segment | Loop] = [start]
    for step in parsed.steps:
        nodes = [found for node in nodes if isinstance(node, Loop) for found in _nearest(node, step)]
    return nodes


def _read(nodes: list[Segment | Loop], element: x12paths.ElementRef) -> list[str]:
    """One value per node: the element of the node itself, or of the nearest such segment below it."""
    values: list[str] = []
    own = x12paths.Step(element.segment)
    for node in nodes:
        candidates = [node] if isinstance(node, Segment) else _nearest(node, own)
        for candidate in candidates:
            # a loop named after the segment (PID loop, N1 loop) holds it as its first segment
            segment = candidate.trigger if isinstance(candidate, Loop) else candidate
            if segment is not None and segment.id == element.segment:
                value = element.read(segment)
                if value is not None:
                    values.append(value)
                    break
    return values


def _start(scope: Scope) -> Loop | None:
    current = scope.current
    if isinstance(current, Loop):
        return current
    return scope.root if isinstance(scope.root, Loop) else None


def _values_getter(parsed: x12paths.Path) -> Getter:
    element = parsed.element
    assert element is not None
    bare = not parsed.steps

    def read(scope: Scope) -> Any:
        current = scope.current
        if bare and isinstance(current, Segment) and current.id == element.segment:
            return element.read(current)
        start = _start(scope)
        if start is None:
            return None
        found = _read(_select(start, parsed), element)
        if not found and start is not scope.root and isinstance(scope.root, Loop):
            found = _read(_select(scope.root, parsed), element)
        return _one_or_many(found)

    return read


def _nodes_getter(parsed: x12paths.Path) -> Getter:
    def select(scope: Scope) -> Any:
        start = _start(scope)
        if start is None:
            return None
        found = _select(start, parsed)
        if not found and start is not scope.root and isinstance(scope.root, Loop):
            found = _select(scope.root, parsed)
        return found

    return select
