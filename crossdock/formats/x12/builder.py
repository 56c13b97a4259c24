"""Building transaction sets from plain values: what a map ``to x12 855`` produces, written as X12.

A map that targets X12 produces a dict whose keys are element IDs, segment IDs and loop IDs of the
set's definition; :func:`build_set` turns it into a :class:`~crossdock.formats.x12.tree.TransactionSet`
laid out as the definition says, and :func:`check_values` reports what is wrong with the keys and
values without building (lint runs it on a skeleton of the map's targets, values None).

The dict, level by level (the set itself, or one instance of a loop):

- ``"BAK03": "PO-1"``: an element of a segment of this level. Elements fill their positions, the
  empty ones in between written empty, trailing empty ones trimmed; a segment whose elements are all
  empty or None is left out. A component of a composite element is ``"REF04_2"`` (or ``"REF04-2"``);
  a whole composite can also be a list, ``"REF04": ["VN", "123"]``.
- ``"REF": [{"REF01": "IA", "REF02": "123"}, ...]``: a segment that repeats, one dict per occurrence
  (a single dict is one occurrence).
- ``"N1": [{"N101": "ST", "N102": "Acme", "N301": "1 Main St"}, ...]``: a loop, one dict per
  instance, each a level of its own (a single dict is one instance; an empty list, none).
- Keys of a loop written at the level above make one instance of that loop: ``"CTT01": 2`` at the
  top of an 855 is the CTT loop; ``"ACK01": "IA"`` in a PO1 line is its ACK loop. Where two loops
  of a level could take a key (an 850's MSG is in the N9 loop and in the PO1 loop), it is ambiguous
  (X12-B007): write the loop.

HL hierarchies (856): ``"HL"`` is a list of levels, each a dict with its level code under
``"level"`` (or ``"HL03"``), its segments and loops, and the levels below it under ``"HL"``. HL01 is
numbered in document order, HL02 names the parent and HL04 says whether levels follow (1 or 0);
HL01 and HL02 cannot be given (X12-B005), HL04 can. Shipment, order, pack, item::

    {"BSN01": "00", "BSN02": "SHP-1", "BSN03": "20261120", "BSN04": "1200",
     "HL": [{"level": "S", "TD101": "CTN25", "TD102": 2,
             "N1": [{"N101": "ST", "N102": "Acme DC", "N103": "92", "N104": "0042"}],
             "HL": [{"level": "O", "PRF01": "PO-1",
                     "HL": [{"level": "P", "MAN01": "GM", "MAN02": "00012345670000000018",
                             "HL": [{"level": "I", "LIN02": "VP", "LIN03": "WID-1",
                                     "SN102": 5, "SN103": "EA"}]}]}]}]}

In a map that reads ``HL = for each shipment ... HL = for each order ... end ... end``.

Values: text is written as it is (dates and codes already formatted); None means absent; ``int`` and
``Decimal`` are written by the element's type: ``N0`` as a whole number, ``N2`` with its two implied
decimals (``Decimal("12.34")`` gives ``1234``), ``R`` and text types in fixed point, never with an
exponent (``Decimal("4.10")`` gives ``4.10``); a ``date`` fills a DT element (CCYYMMDD, or YYMMDD
where the element has 6 characters), a ``time`` a TM element (HHMM, or HHMMSS with seconds). A
float, a bool or any other type is X12-B003; a number the type cannot hold (decimals in N0, more
decimals than N2 implies) is X12-B004, as rounding money is the map's decision.

Computed: ST and SE (control number given, SE01 written by the generator), HL01, HL02 and HL04, and
the count element of the definition (``CTT01``: the PO1, IT1 or HL segments built) when the values
do not set it.

:func:`validate_set` checks a built set against its definition, as the parser checks what is read.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from crossdock.dsl.diagnostics import did_you_mean
from crossdock.formats.x12.definitions import ElementDef, LoopUse, Node, SegmentUse, SetDefinition
from crossdock.formats.x12.errors import X12EncodeError
from crossdock.formats.x12.issues import Issue, Mode
from crossdock.formats.x12.parser import parse_set
from crossdock.formats.x12.segment import Element, Segment
from crossdock.formats.x12.tree import Loop, TransactionSet

ELEMENT_KEY = re.compile(r"^([A-Z][A-Z0-9]{1,2})(\d\d)(?:[-_](\d+))?$")
LEVEL = "level"
"""The key of an HL level's code (HL03)."""

BUILD_CODES: dict[str, str] = {
    "X12-B001": "unknown key: no element, segment or loop of the set has this name at this place",
    "X12-B002": "wrong shape: a loop or a repeating segment takes a dict or a list of dicts, an element a value",
    "X12-B003": "a value of a type that is not written as X12 (float, bool...)",
    "X12-B004": "a number the element's type cannot hold (decimals in N0, more decimals than Nn implies)",
    "X12-B005": "an element the builder computes (HL01, HL02)",
    "X12-B006": "one segment, loop or element given twice at one place",
    "X12-B007": "ambiguous key: several loops of this place have that element or segment",
}
"""The codes of :class:`BuildProblem`; docs/x12.md describes each."""


@dataclass(frozen=True, slots=True)
class BuildProblem:
    """Something in the values that cannot become X12: a code, where, which key, why, a hint."""

    code: str
    path: str
    """Where the key sits: "" at the top, ``PO1[2]`` in the second PO1 loop, ``HL[1].HL[1]``..."""
    key: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}.{self.key}" if self.path else self.key
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.code}: {where}: {self.message}{hint}"


class X12BuildError(X12EncodeError):
    """Values that cannot be built into a set; `problems` lists every one, the first gives the code."""

    def __init__(self, problems: list[BuildProblem]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}", code=problems[0].code,
                         details={"problems": [str(problem) for problem in problems]})


class _Invalid(Exception):
    """A value that cannot be written: the code and message of its problem."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class _Count:
    """The value of a count element the builder fills in (CTT01): the segment ID it counts."""

    counted: str


# What a key names at one level.
LOOP, SEGMENT, ELEMENT, NESTED, AMBIGUOUS = "loop", "segment", "element", "nested", "ambiguous"


@dataclass(frozen=True, slots=True)
class _Route:
    kind: str
    name: str
    """The loop (LOOP, NESTED) or segment (SEGMENT, ELEMENT) the key goes to."""
    depth: int = 0
    position: int = 0
    component: int | None = None
    loops: tuple[str, ...] = ()
    """For AMBIGUOUS: the loops that could take the key."""


class _Level:
    """One loop body, or the set's own structure, indexed to tell where each key goes."""

    def __init__(self, definition: SetDefinition, nodes: list[Node], loop: LoopUse | None = None) -> None:
        self.definition = definition
        self.nodes = nodes
        self.hierarchical = loop is not None and loop.hierarchical
        self.segments: dict[str, int] = {}
        """Segment ID to its first position at this level (a loop's trigger is its position 0)."""
        self.loops: dict[str, _Level] = {}
        for index, node in enumerate(nodes):
            if isinstance(node, LoopUse):
                self.loops.setdefault(node.loop, _Level(definition, node.body, node))
            else:
                self.segments.setdefault(node.segment, index)
        self._routes: dict[str, _Route | None] = {}

    def route(self, key: str) -> _Route | None:
        """Where `key` goes from this level, or None when nothing here takes it."""
        if key not in self._routes:
            self._routes[key] = self._route(key)
        return self._routes[key]

    def _route(self, key: str) -> _Route | None:
        if key in self.loops:
            return _Route(LOOP, key)
        if key in self.segments:
            return _Route(SEGMENT, key)
        match = ELEMENT_KEY.match(key)
        if match and match.group(1) in self.segments:
            elements = self.definition.segments[match.group(1)].elements
            position = int(match.group(2))
            component = int(match.group(3)) if match.group(3) else None
            if not 0 < position <= len(elements):
                return None
            components = elements[position - 1].components
            if component is not None and (components is None or not 0 < component <= len(components)):
                return None
            return _Route(ELEMENT, match.group(1), position=position, component=component)
        found: list[tuple[int, str]] = []
        for loop_id, level in self.loops.items():
            inner = level.route(key) if not level.hierarchical else None
            if inner is not None and inner.kind != AMBIGUOUS:
                found.append((inner.depth + 1, loop_id))
        if not found:
            return None
        nearest = min(depth for depth, _ in found)
        loops = tuple(loop_id for depth, loop_id in found if depth == nearest)
        if len(loops) > 1:
            return _Route(AMBIGUOUS, "", loops=loops)
        return _Route(NESTED, loops[0], depth=nearest)

    @functools.cached_property
    def keys(self) -> tuple[str, ...]:
        """Every key this level takes, in the definition's order (did-you-mean prefers the first of equals)."""
        found: dict[str, None] = {}
        for node in self.nodes:
            if isinstance(node, LoopUse):
                found[node.loop] = None
                level = self.loops[node.loop]
                if not level.hierarchical:
                    found.update(dict.fromkeys(level.keys))
            else:
                found[node.segment] = None
                elements = self.definition.segments[node.segment].elements
                found.update(dict.fromkeys(f"{node.segment}{position:02d}" for position in range(1, len(elements) + 1)))
        return tuple(found)


class _Plan:
    """A definition indexed for building: its top level, and where each segment ID sits."""

    _cache: ClassVar[dict[int, tuple[SetDefinition, _Plan]]] = {}

    def __init__(self, definition: SetDefinition) -> None:
        self.definition = definition
        self.root = _Level(definition, definition.structure)
        self.places: dict[str, list[str]] = {}
        """Segment ID to where it sits ("the top", "loop PO1 > ACK"), for hints."""
        self._place(definition.structure, [])
        self.occurrences = {segment_id: _Level(definition, [SegmentUse(segment=segment_id)])
                            for segment_id in definition.segments}
        """Per segment ID, a level that takes only its element keys: one occurrence of a repeating segment."""

    def _place(self, nodes: list[Node], loops: list[str]) -> None:
        for node in nodes:
            if isinstance(node, LoopUse):
                self._place(node.body, [*loops, node.loop])
            else:
                self.places.setdefault(node.segment, []).append(
                    f"loop {' > '.join(loops)}" if loops else "the top")

    @classmethod
    def of(cls, definition: SetDefinition) -> _Plan:
        """The plan of `definition`, built on first use."""
        # Keyed by identity; the cache keeps the definition alive so that its id is never reused.
        cached = cls._cache.get(id(definition))
        if cached is None:
            cached = cls._cache[id(definition)] = (definition, cls(definition))
        return cached[1]


def _number(value: int | Decimal, element: ElementDef) -> str:
    number = Decimal(value)
    if not number.is_finite():
        raise _Invalid("X12-B004", f"{value} is not a number that can be written")
    kind = element.type or ""
    if kind[:1] == "N":
        places = int(kind[1:])
        scaled = number.scaleb(places)
        if scaled != scaled.to_integral_value():
            what = "whole number" if places == 0 else f"number with {places} implied decimal places"
            raise _Invalid("X12-B004", f"{value} does not fit a {kind} element ({what}); round it in the map")
        return str(int(scaled))
    return format(number, "f")


def _text(value: object, element: ElementDef) -> str:
    """`value` as the element's text; raises :class:`_Invalid`."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | Decimal | dt.date | dt.time):
        hint = "; use decimal() for numbers" if isinstance(value, float) else ""
        raise _Invalid("X12-B003", f"a {type(value).__name__} is not written as X12{hint}")
    if isinstance(value, int | Decimal):
        return _number(value, element)
    if element.type == "DT" and isinstance(value, dt.date):
        return value.strftime("%Y%m%d" if element.max >= 8 else "%y%m%d")
    if element.type == "TM" and isinstance(value, dt.time | dt.datetime):
        return value.strftime("%H%M%S" if value.second else "%H%M")
    raise _Invalid("X12-B003", f"a {type(value).__name__} fills a DT or TM element, not a {element.type} one; "
                               "format it as text")


class _Builder:
    """Builds the children of a set from values, collecting problems instead of stopping at the first."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.definition = plan.definition
        self.problems: list[BuildProblem] = []
        self.counts: list[tuple[Segment, int, str]] = []
        self.hl_number = 0

    def problem(self, code: str, path: str, key: str, message: str, hint: str | None = None) -> None:
        self.problems.append(BuildProblem(code, path, key, message, hint))

    # Levels --------------------------------------------------------------------------------------

    def level(self, level: _Level, values: Mapping[str, Any], path: str) -> list[Segment | Loop]:
        """The children of one level, in the definition's order."""
        elements: dict[str, dict[str, tuple[_Route, Any]]] = {}
        explicit: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for key, value in values.items():
            if level.hierarchical and key in (LEVEL, "HL", "HL03", "HL04"):
                continue  # the HL segment and the levels below are hl()'s
            if level.hierarchical and key in ("HL01", "HL02"):
                self.problem("X12-B005", path, key, f"{key} is numbered by the builder from the HL nesting",
                             "leave it out; nest the levels under HL")
                continue
            route = level.route(key) if isinstance(key, str) else None
            if route is None:
                self._unknown(level, key, path)
            elif route.kind == AMBIGUOUS:
                self.problem("X12-B007", path, key, f"{key} could go in loop {' or '.join(route.loops)}",
                             f"write it inside {route.loops[0]}: {route.loops[0]} = ...")
            elif route.kind == ELEMENT:
                elements.setdefault(route.name, {})[key] = (route, value)
            elif route.kind == NESTED:
                nested.setdefault(route.name, {})[key] = value
            else:
                explicit[key] = value
        children: list[Segment | Loop] = []
        done: set[str] = set()
        for node in level.nodes:
            if isinstance(node, LoopUse):
                self._loops(level.loops[node.loop], node.loop, nested.get(node.loop), explicit, path, children)
            elif node.segment not in done:
                done.add(node.segment)
                self._segments(node.segment, elements.get(node.segment), explicit, path, children)
        return children

    def _unknown(self, level: _Level, key: object, path: str) -> None:
        if not isinstance(key, str):
            self.problem("X12-B001", path, repr(key), "keys are element, segment and loop IDs (text)")
            return
        match = ELEMENT_KEY.match(key)
        segment_id = match.group(1) if match else key
        definition = self.definition
        elsewhere = segment_id not in level.segments and segment_id in self.plan.places and (
            match is None or definition.element(f"{segment_id}{match.group(2)}") is not None)
        count = len(definition.segments[segment_id].elements) if segment_id in level.segments else 0
        if segment_id in ("ST", "SE"):
            hint: str | None = "the builder writes ST and SE"
        elif match and count and not 0 < int(match.group(2)) <= count:
            hint = f"{segment_id} has elements {segment_id}01 to {segment_id}{count:02d}"
        elif elsewhere:
            hint = f"{segment_id} is written in {' and in '.join(self.plan.places[segment_id])}"
        else:
            hint = did_you_mean(key, level.keys)
        self.problem("X12-B001", path, key, f"the {definition.id} has no {key} here", hint)

    def _items(self, value: Any, path: str, key: str) -> list[Mapping[str, Any]]:
        """A loop's or repeating segment's value as a list of dicts (None and [] give none)."""
        if value is None:
            return []
        if isinstance(value, Mapping):
            return [value]
        if isinstance(value, list | tuple) and all(isinstance(item, Mapping) for item in value):
            return list(value)
        self.problem("X12-B002", path, key, f"{key} takes a dict or a list of dicts, not {type(value).__name__}")
        return []

    def _segments(self, segment_id: str, elements: dict[str, tuple[_Route, Any]] | None, explicit: dict[str, Any],
                  path: str, into: list[Segment | Loop]) -> None:
        if elements:
            segment = self.segment(segment_id, elements, path)
            if segment is not None:
                into.append(segment)
        if segment_id in explicit:
            if elements:
                self.problem("X12-B006", path, segment_id, f"{segment_id} is given both as elements "
                             f"({', '.join(elements)}) and as a list", "write every occurrence in the list")
            for number, item in enumerate(self._items(explicit[segment_id], path, segment_id), 1):
                where = f"{path}.{segment_id}[{number}]" if path else f"{segment_id}[{number}]"
                segment = self.segment(segment_id, self._occurrence(segment_id, item, where), where)
                if segment is not None:
                    into.append(segment)

    def _occurrence(self, segment_id: str, item: Mapping[str, Any], path: str) -> dict[str, tuple[_Route, Any]]:
        """The elements of one occurrence of a repeating segment: only that segment's element keys."""
        level = self.plan.occurrences[segment_id]
        found: dict[str, tuple[_Route, Any]] = {}
        for key, value in item.items():
            route = level.route(key) if isinstance(key, str) else None
            if route is None or route.kind != ELEMENT:
                hint = did_you_mean(key, level.keys) if isinstance(key, str) else None
                self.problem("X12-B001", path, str(key), f"a {segment_id} occurrence has no {key}", hint)
            else:
                found[key] = (route, value)
        return found

    def _loops(self, level: _Level, loop_id: str, flattened: dict[str, Any] | None, explicit: dict[str, Any],
               path: str, into: list[Segment | Loop]) -> None:
        prefix = f"{path}.{loop_id}" if path else loop_id
        if level.hierarchical:
            for number, item in enumerate(self._items(explicit.get(loop_id), path, loop_id), 1):
                into.append(self.hl(level, item, f"{prefix}[{number}]", ""))
            return
        if flattened:
            # Problems name the place where the keys were written: this level.
            instance = self.instance(level, loop_id, flattened, path)
            if instance is not None:
                into.append(instance)
        if loop_id in explicit:
            if flattened:
                self.problem("X12-B006", path, loop_id, f"loop {loop_id} is given both as keys ({', '.join(flattened)})"
                             " and as a list", "write every instance in the list")
            for number, item in enumerate(self._items(explicit[loop_id], path, loop_id), 1):
                instance = self.instance(level, loop_id, item, f"{prefix}[{number}]")
                if instance is not None:
                    into.append(instance)

    def instance(self, level: _Level, loop_id: str, values: Mapping[str, Any], path: str) -> Loop | None:
        """One loop instance, trigger first (written empty when only the rest has values); None if empty."""
        children = self.level(level, values, path)
        if not children:
            return None
        first = children[0]
        if not (isinstance(first, Segment) and first.id == loop_id):
            children.insert(0, Segment(loop_id, []))
        return Loop(loop_id, children)

    def hl(self, level: _Level, values: Mapping[str, Any], path: str, parent: str) -> Loop:
        """One HL level and the levels below it, numbered in document order."""
        self.hl_number += 1
        number = str(self.hl_number)
        code = values.get(LEVEL)
        if code is not None and values.get("HL03") is not None and code != values.get("HL03"):
            self.problem("X12-B006", path, LEVEL, f"level {code!r} and HL03 {values.get('HL03')!r} differ",
                         "give the level code once")
        children = self.level(level, values, path)
        below = self._items(values.get("HL"), path, "HL")
        hl03 = self.value(code if code is not None else values.get("HL03"), "HL", 3, path, LEVEL)
        hl04 = values.get("HL04")
        hl04_text = self.value(hl04, "HL", 4, path, "HL04") if hl04 is not None else ("1" if below else "0")
        trigger = _trimmed("HL", [number, parent, hl03, hl04_text])
        loop = Loop("HL", [trigger, *children])
        for index, item in enumerate(below, 1):
            loop.children.append(self.hl(level, item, f"{path}.HL[{index}]", number))
        return loop

    # Segments and values -------------------------------------------------------------------------

    def value(self, value: Any, segment_id: str, position: int, path: str, key: str,
              component: int | None = None) -> str:
        """One element's (or component's) text; a problem and "" when it cannot be written."""
        if value is None:
            return ""
        element = self.definition.segments[segment_id].elements[position - 1]
        if component is not None and element.components is not None:
            element = element.components[component - 1]
        try:
            return _text(value, element)
        except _Invalid as invalid:
            self.problem(invalid.code, path, key, invalid.message)
            return ""

    def segment(self, segment_id: str, values: dict[str, tuple[_Route, Any]], path: str) -> Segment | None:
        """A segment from its element keys, None when every value is empty."""
        slots: dict[int, Element] = {}
        counted: list[tuple[int, str]] = []
        for key, (route, value) in values.items():
            position, component = route.position, route.component
            definition = self.definition.segments[segment_id].elements[position - 1]
            if isinstance(value, _Count):
                slots[position] = "0"
                counted.append((position, value.counted))
            elif definition.components is None:
                if isinstance(value, Mapping | list | tuple):
                    self.problem("X12-B002", path, key, f"{key} takes one value, not a {type(value).__name__}")
                    continue
                slots[position] = self.value(value, segment_id, position, path, key)
            else:
                self._component(slots, segment_id, position, component, value, path, key)
        elements: list[Element] = [slots.get(position, "") for position in range(1, max(slots, default=0) + 1)]
        segment = _trimmed(segment_id, elements)
        if not segment.elements:
            return None
        for position, counted_id in counted:
            self.counts.append((segment, position, counted_id))
        return segment

    def _component(self, slots: dict[int, Element], segment_id: str, position: int, component: int | None,
                   value: Any, path: str, key: str) -> None:
        """Put a composite's value, or one component of it, in `slots`."""
        current = slots.get(position)
        parts: list[str] = list(current) if isinstance(current, list) else ([current] if current else [])
        if component is None:
            given = list(value) if isinstance(value, list | tuple) else [value]
            if parts:
                self.problem("X12-B006", path, key, f"{key} is given whole and by component")
            parts = [self.value(part, segment_id, position, path, key, index) for index, part in enumerate(given, 1)]
        else:
            parts += [""] * (component - len(parts))
            if parts[component - 1]:
                self.problem("X12-B006", path, key, f"{key} is given twice")
            parts[component - 1] = self.value(value, segment_id, position, path, key, component)
        while parts and not parts[-1]:
            parts.pop()
        slots[position] = parts if len(parts) > 1 else (parts[0] if parts else "")


def _trimmed(segment_id: str, elements: list[Element]) -> Segment:
    values = list(elements)
    while values and not values[-1]:
        values.pop()
    return Segment(segment_id, values)


def _with_counts(values: Mapping[str, Any], level: _Level, key: str, counted: str) -> Mapping[str, Any]:
    """`values` with count element `key` set to be computed, unless the values set it."""
    if key in values:
        return values
    route = level.route(key)
    if route is None or route.kind == AMBIGUOUS:
        return values
    holder = route.name
    container = values.get(holder)
    if route.kind == NESTED and isinstance(container, Mapping):
        return {**values, holder: _with_counts(container, level.loops[holder], key, counted)}
    if route.kind == NESTED and isinstance(container, list) and container and isinstance(container[0], Mapping):
        return {**values, holder: [_with_counts(container[0], level.loops[holder], key, counted), *container[1:]]}
    if route.kind == ELEMENT and isinstance(container, Mapping):
        return {**values, holder: container if key in container else {**container, key: _Count(counted)}}
    if route.kind == ELEMENT and isinstance(container, list) and container and isinstance(container[0], Mapping):
        first = container[0] if key in container[0] else {**container[0], key: _Count(counted)}
        return {**values, holder: [first, *container[1:]]}
    return {**values, key: _Count(counted)}


def _build(values: Mapping[str, Any], definition: SetDefinition) -> tuple[list[Segment | Loop], _Builder]:
    plan = _Plan.of(definition)
    builder = _Builder(plan)
    if not isinstance(values, Mapping):
        builder.problem("X12-B002", "", "", f"a {definition.id} is built from a dict, not {type(values).__name__}")
        return [], builder
    for key, counted in definition.counts.items():
        values = _with_counts(values, plan.root, key, counted)
    return builder.level(plan.root, values, ""), builder


def check_values(values: Mapping[str, Any], definition: SetDefinition) -> list[BuildProblem]:
    """What stops `values` from becoming a `definition` set: unknown keys (with did-you-mean), wrong
    shapes, values that cannot be written. Values may be None (a skeleton of keys, as lint has)."""
    return _build(values, definition)[1].problems


def build_set(values: Mapping[str, Any], definition: SetDefinition, control_number: str, *,
              implementation: str | None = None) -> TransactionSet:
    """The `definition` set that `values` describe (see the module docstring), ST02 `control_number`.

    `implementation` is ST03 (005010). Raises :class:`X12BuildError` with every problem
    :func:`check_values` finds. The set is laid out, not validated: :func:`validate_set` checks it.
    """
    children, builder = _build(values, definition)
    if builder.problems:
        raise X12BuildError(builder.problems)
    ts = TransactionSet.build(definition.id, control_number, children, implementation=implementation)
    ts.definition = definition
    segments = list(ts.segments())
    for index, segment in enumerate(segments, 1):
        segment.set_index = index
    for segment, position, counted in builder.counts:
        segment.elements[position - 1] = str(sum(1 for other in segments if other.id == counted))
    return ts


def validate_set(ts: TransactionSet, *, mode: Mode = Mode.STRICT) -> list[Issue]:
    """The issues of a built set against its definition, found as the parser finds them on input."""
    body = [segment for segment in ts.segments() if segment is not ts.st and segment is not ts.se]
    return parse_set(ts.st, body, ts.se, ts.definition, mode=mode).issues
