"""The parsed model: Document -> Interchange -> FunctionalGroup -> TransactionSet -> Loop / Segment tree.

A :class:`Loop` holds segments and nested loops in document order, its trigger segment first. A
:class:`TransactionSet` is the root loop of one set: ST first, SE last (when present), the set's
loops in between as its definition lays them out, HL loops nested by their HL02 parent.

Reading a tree: :meth:`Loop.find` (first segment with an ID), :meth:`Loop.find_all`,
:meth:`Loop.loops` (every loop with an ID, at any depth), :meth:`Loop.element` (an element of the
first segment with an ID), and paths (:mod:`crossdock.formats.x12.paths`): :meth:`Loop.get`
(``ts.get('N1[N101="ST"].N104')``), :meth:`Loop.values`, :meth:`Loop.select`.

Each level keeps its own issues; ``all_issues()`` gathers them from a level and everything below it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain

from crossdock.formats.x12 import paths
from crossdock.formats.x12.definitions import SetDefinition
from crossdock.formats.x12.delimiters import Delimiters
from crossdock.formats.x12.issues import Issue
from crossdock.formats.x12.segment import Element, IsaSegment, Segment


class Loop:
    """A loop instance: its ID (the trigger segment's) and its children in document order."""

    __slots__ = ("children", "id")

    def __init__(self, id: str, children: list[Segment | Loop] | None = None) -> None:
        self.id = id
        self.children: list[Segment | Loop] = children if children is not None else []

    @property
    def trigger(self) -> Segment | None:
        """The segment that opened the loop."""
        first = self.children[0] if self.children else None
        return first if isinstance(first, Segment) else None

    def segments(self) -> Iterator[Segment]:
        """Every segment in the loop and below, in document order."""
        for child in self.children:
            if isinstance(child, Segment):
                yield child
            else:
                yield from child.segments()

    def find(self, segment_id: str) -> Segment | None:
        """The first segment `segment_id` in the loop or below."""
        return next(self.find_all(segment_id), None)

    def find_all(self, segment_id: str) -> Iterator[Segment]:
        """Every segment `segment_id` in the loop or below, in document order."""
        return (segment for segment in self.segments() if segment.id == segment_id)

    def loops(self, loop_id: str) -> Iterator[Loop]:
        """Every loop `loop_id` below this one, at any depth, in document order."""
        for child in self.children:
            if isinstance(child, Loop):
                if child.id == loop_id:
                    yield child
                yield from child.loops(loop_id)

    def element(self, segment_id: str, position: int, component: int | None = None) -> str | None:
        """Element `position` of the first segment `segment_id` (None when absent or empty)."""
        segment = self.find(segment_id)
        return (segment.value(position, component) or None) if segment is not None else None

    def select(self, path: str) -> list[Segment | Loop]:
        """The loops or segments a path reaches (see :mod:`crossdock.formats.x12.paths`)."""
        return paths.select(self, path)

    def values(self, path: str) -> list[str]:
        """The non-empty values an element path reads, in document order."""
        return paths.values(self, path)

    def get(self, path: str) -> str | None:
        """The first value an element path reads, or None."""
        found = paths.values(self, path)
        return found[0] if found else None

    def __repr__(self) -> str:
        return f"Loop({self.id!r}, {len(self.children)} children)"


class TransactionSet(Loop):
    """One transaction set as a tree, with its envelope context and issues."""

    __slots__ = ("definition", "gs", "isa", "issues", "se", "st")

    def __init__(
        self,
        st: Segment,
        se: Segment | None,
        children: list[Segment | Loop],
        *,
        isa: IsaSegment | None = None,
        gs: Segment | None = None,
        definition: SetDefinition | None = None,
        issues: list[Issue] | None = None,
    ) -> None:
        super().__init__(st.value(1), children)
        self.st = st
        self.se = se
        self.isa = isa
        """The ISA of the interchange the set arrived in (None for a set built in code)."""
        self.gs = gs
        """The GS of the functional group the set arrived in (None for a set built in code)."""
        self.definition = definition
        """The definition the set was parsed with, None when there was none."""
        self.issues: list[Issue] = issues if issues is not None else []

    @classmethod
    def build(cls, set_id: str, control_number: str, body: list[Segment | Loop],
              *, implementation: str | None = None) -> TransactionSet:
        """A new set (ST, `body`, SE); the generator fills SE01 and SE02 when writing."""
        elements: list[Element] = [set_id, control_number]
        if implementation:
            elements.append(implementation)
        st = Segment("ST", elements)
        se = Segment("SE", ["", control_number])
        return cls(st, se, [st, *body, se])

    @property
    def set_id(self) -> str:
        """ST01, e.g. "850"."""
        return self.st.value(1)

    @property
    def control_number(self) -> str:
        """ST02."""
        return self.st.value(2)

    @property
    def version(self) -> str | None:
        """GS08 of the group the set arrived in."""
        return self.gs.value(8) if self.gs is not None else None

    @property
    def delimiters(self) -> Delimiters | None:
        """The delimiters of the interchange the set arrived in."""
        return self.isa.delimiters if self.isa is not None else None

    @property
    def errors(self) -> list[Issue]:
        """The set's issues that are errors."""
        return [issue for issue in self.issues if issue.is_error]

    def all_issues(self) -> list[Issue]:
        """The set's issues (envelope and content)."""
        return list(self.issues)

    def __repr__(self) -> str:
        return f"TransactionSet({self.set_id!r}, {self.control_number!r}, {len(self.children)} children)"


def _sorted(issues: Iterator[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda issue: issue.segment if issue.segment is not None else 0)


@dataclass
class FunctionalGroup:
    """A GS ... GE group of transaction sets; `issues` are the group's own (GS fields, GE checks)."""

    gs: Segment
    sets: list[TransactionSet] = field(default_factory=list)
    ge: Segment | None = None
    issues: list[Issue] = field(default_factory=list)

    @property
    def functional_id(self) -> str:
        """GS01, e.g. "PO"."""
        return self.gs.value(1)

    @property
    def control_number(self) -> str:
        """GS06."""
        return self.gs.value(6)

    @property
    def version(self) -> str:
        """GS08, e.g. "004010"."""
        return self.gs.value(8)

    def all_issues(self) -> list[Issue]:
        """The group's issues and those of its sets, by position."""
        return _sorted(chain(self.issues, *(ts.issues for ts in self.sets)))


@dataclass
class Interchange:
    """An ISA ... IEA interchange; `issues` are its own (ISA fields, IEA checks, findings)."""

    isa: IsaSegment
    groups: list[FunctionalGroup] = field(default_factory=list)
    iea: Segment | None = None
    ta1: list[Segment] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def delimiters(self) -> Delimiters:
        """The interchange's delimiters, from its ISA."""
        return self.isa.delimiters

    @property
    def control_number(self) -> str:
        """ISA13."""
        return self.isa.value(13)

    def sets(self) -> Iterator[TransactionSet]:
        """Every transaction set of every group, in order."""
        for group in self.groups:
            yield from group.sets

    def all_issues(self) -> list[Issue]:
        """The interchange's issues and those of its groups and sets, by position."""
        return _sorted(chain(self.issues, *(group.all_issues() for group in self.groups)))


@dataclass
class Document:
    """Everything read from one input: its interchanges, and issues outside any of them."""

    interchanges: list[Interchange] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    bom: bool = False
    """Whether the input began with a UTF-8 byte order mark (written back by the generator)."""

    def sets(self) -> Iterator[TransactionSet]:
        """Every transaction set, in order."""
        for interchange in self.interchanges:
            yield from interchange.sets()

    def all_issues(self) -> list[Issue]:
        """Every issue found, by position."""
        return _sorted(chain(self.issues, *(ic.all_issues() for ic in self.interchanges)))

    @property
    def errors(self) -> list[Issue]:
        """Every issue that is an error."""
        return [issue for issue in self.all_issues() if issue.is_error]

    @property
    def ok(self) -> bool:
        """True when nothing found is an error."""
        return not self.errors
