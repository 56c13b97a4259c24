"""Segment and element paths over a loop tree: ``BEG03``, ``N1[N101="ST"].N104``, ``HL[HL03="I"]``.

A path is steps separated by dots. A step names a loop or a segment (``N1``, ``PO1``, ``HL``, ``REF``),
optionally filtered by conditions in brackets, comma-separated: ``N1[N101="ST"]``,
``REF[REF01 != "DP"]``. The last step may be an element: ``N104``, or a component of a composite
element: ``REF04-2``.

Evaluation starts at a loop (a transaction set, or any loop in it). A step finds, among everything
below the current nodes in document order, the loops with that ID, or the segments with that ID that
do not start such a loop; ``HL`` finds HL loops at every depth of the hierarchy. A condition holds for
a segment when its element has the value, and for a loop when one of its own segments (those not in
a nested loop of the same ID) has it. An element step reads the element of the current segment, or
of the first such segment with that ID in the current loop. Empty elements count as absent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crossdock.formats.x12.segment import Segment

if TYPE_CHECKING:
    from crossdock.formats.x12.tree import Loop

_NAME = re.compile(r"[A-Z][A-Z0-9]{1,2}(?![A-Z0-9])")
_ELEMENT = re.compile(r"([A-Z][A-Z0-9]{1,2})(\d\d)(?:-(\d+))?(?![A-Z0-9])")
_CONDITION = re.compile(
    r"\s*([A-Z][A-Z0-9]{1,2})(\d\d)(?:-(\d+))?\s*(!=|=)\s*(?:\"([^\"]*)\"|'([^']*)')\s*"
)


class PathError(ValueError):
    """A path that cannot be parsed; `column` is the 1-based column of the problem."""

    def __init__(self, path: str, column: int, message: str) -> None:
        self.path = path
        self.column = column
        super().__init__(f"{message} at column {column} of {path!r}")


@dataclass(frozen=True, slots=True)
class ElementRef:
    """An element (and component) of a segment: ``N104`` or ``REF04-2``."""

    segment: str
    position: int
    component: int | None = None

    def read(self, segment: Segment) -> str | None:
        """The element's value in `segment`, None when absent or empty."""
        return segment.value(self.position, self.component) or None


@dataclass(frozen=True, slots=True)
class Condition:
    """``N101 = "ST"`` (or ``!=``) inside a step's brackets."""

    element: ElementRef
    value: str
    negate: bool = False

    def holds(self, segment: Segment) -> bool:
        return (self.element.read(segment) == self.value) != self.negate


@dataclass(frozen=True, slots=True)
class Step:
    """One dotted step: a loop or segment ID and its conditions."""

    name: str
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class Path:
    """A parsed path: its steps and, when it reads a value, the final element."""

    text: str
    steps: tuple[Step, ...]
    element: ElementRef | None


@functools.lru_cache(maxsize=1024)
def parse_path(text: str) -> Path:
    """Parse `text`; raises :class:`PathError` with the column of the first problem."""
    steps: list[Step] = []
    element: ElementRef | None = None
    position = 0
    while True:
        if element is not None:
            raise PathError(text, position + 1, "an element must be the last step")
        match = _ELEMENT.match(text, position)
        if match:
            element = _element_ref(match)
            position = match.end()
        else:
            match = _NAME.match(text, position)
            if match is None:
                raise PathError(text, position + 1, "expected a segment, loop or element ID")
            position = match.end()
            conditions: list[Condition] = []
            if text.startswith("[", position):
                position = _conditions(text, position + 1, conditions)
            steps.append(Step(match.group(0), tuple(conditions)))
        if position == len(text):
            return Path(text, tuple(steps), element)
        if text[position] != ".":
            raise PathError(text, position + 1, "expected '.' between steps")
        position += 1


def _element_ref(match: re.Match[str]) -> ElementRef:
    component = int(match.group(3)) if match.group(3) else None
    return ElementRef(match.group(1), int(match.group(2)), component)


def _conditions(text: str, position: int, into: list[Condition]) -> int:
    """Parse ``cond, cond]`` from `position`; returns the position after the closing bracket."""
    while True:
        match = _CONDITION.match(text, position)
        if match is None:
            raise PathError(text, position + 1, 'expected a condition such as N101 = "ST"')
        value = match.group(5) if match.group(5) is not None else match.group(6)
        into.append(Condition(_element_ref(match), value, negate=match.group(4) == "!="))
        position = match.end()
        if text.startswith("]", position):
            return position + 1
        if not text.startswith(",", position):
            raise PathError(text, position + 1, "expected ',' or ']'")
        position += 1


def _below(loop: Loop, name: str) -> Iterator[Segment | Loop]:
    """Loops with ID `name` and segments with ID `name` that start no such loop, in document order."""
    skip_trigger = loop.id == name
    for index, child in enumerate(loop.children):
        if isinstance(child, Segment):
            if child.id == name and not (skip_trigger and index == 0):
                yield child
        else:
            if child.id == name:
                yield child
            yield from _below(child, name)


def own_segments(loop: Loop, segment_id: str) -> Iterator[Segment]:
    """Segments `segment_id` of `loop`, outside nested loops that have `loop`'s own ID."""
    for child in loop.children:
        if isinstance(child, Segment):
            if child.id == segment_id:
                yield child
        elif child.id != loop.id:
            yield from own_segments(child, segment_id)


def _holds(node: Segment | Loop, condition: Condition) -> bool:
    if isinstance(node, Segment):
        return node.id == condition.element.segment and condition.holds(node)
    return any(condition.holds(segment) for segment in own_segments(node, condition.element.segment))


def select(root: Loop, path: str | Path) -> list[Segment | Loop]:
    """The nodes the steps of `path` reach from `root`, in document order (its element, if any, ignored)."""
    parsed = parse_path(path) if isinstance(path, str) else path
    nodes: list[Segment | Loop] = [root]
    for step in parsed.steps:
        found: list[Segment | Loop] = []
        for node in nodes:
            if not isinstance(node, Segment):
                found.extend(candidate for candidate in _below(node, step.name)
                             if all(_holds(candidate, condition) for condition in step.conditions))
        nodes = found
    return nodes


def values(root: Loop, path: str | Path) -> list[str]:
    """The non-empty values `path` reads from `root`, in document order; [] for a path without element."""
    parsed = parse_path(path) if isinstance(path, str) else path
    element = parsed.element
    if element is None:
        return []
    found: list[str] = []
    for node in select(root, parsed):
        if isinstance(node, Segment):
            segments: Iterator[Segment] = iter([node] if node.id == element.segment else [])
        else:
            segments = own_segments(node, element.segment)
        for segment in segments:
            value = element.read(segment)
            if value is not None:
                found.append(value)
                break
    return found
