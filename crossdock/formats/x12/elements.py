"""Data element validation: one segment's elements against its definition.

:func:`compile_segment` turns a :class:`~crossdock.formats.x12.definitions.SegmentDef` into a
:class:`SegmentRule` once; :meth:`SegmentRule.check` then reports, as :class:`Problem` tuples, what an
AK4 / IK4 would say: mandatory element missing (X12-D001), conditional element missing (X12-D002,
from the P, R, C and L syntax notes), too many elements (X12-D003), too short (X12-D004), too long
(X12-D005), invalid character (X12-D006), invalid code (X12-D007), invalid date (X12-D008), invalid
time (X12-D009), exclusion violated (X12-D010, the E syntax note), and, as a warning only, a code
that is not in an incomplete list (X12-D011).

Every element remembers a bounded number of values it has already accepted, so the common case (the
same unit, qualifier or date again) costs one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from crossdock.formats.x12.datatypes import decimal_digits, is_date, is_time, numeric_digits
from crossdock.formats.x12.definitions import ElementDef, SegmentDef
from crossdock.formats.x12.segment import Element

KNOWN_VALUES_PER_ELEMENT = 512
"""How many accepted values each element remembers (bounded, so memory stays flat on huge files)."""


class Problem(NamedTuple):
    """One element defect: code, message, 1-based element (and component) position, reference, value."""

    code: str
    message: str
    position: int
    component: int | None
    ref: str | None
    value: str | None
    warning: bool = False


Finding = tuple[str, str, bool] | None
"""What a value check says: None when the value is fine, else (code, message, warning)."""


def _length(definition: ElementDef, size: int, what: str) -> Finding:
    if size < definition.min:
        return "X12-D004", f"{what} is shorter than {definition.min}", False
    if size > definition.max:
        return "X12-D005", f"{what} is longer than {definition.max}", False
    return None


def _value_check(definition: ElementDef) -> Callable[[str], Finding]:
    """The check for one simple element's non-empty value, chosen once by data type.

    The checks compare lengths inline: they run for every value not seen before.
    """
    kind, low, high = definition.type, definition.min, definition.max
    if kind == "ID":
        codes = frozenset(definition.codes or ())
        complete = definition.complete

        def check_id(value: str) -> Finding:
            if codes and value not in codes:
                if complete:
                    return "X12-D007", f"{value!r} is not a valid code", False
                found = _length(definition, len(value), f"{value!r}")
                return found or ("X12-D011", f"{value!r} is not among the codes crossdock knows", True)
            return None if low <= len(value) <= high else _length(definition, len(value), f"{value!r}")

        return check_id
    if kind == "DT":
        return lambda value: (None if low <= len(value) <= high and is_date(value)
                              else ("X12-D008", f"{value!r} is not a valid date", False))
    if kind == "TM":
        return lambda value: (None if low <= len(value) <= high and is_time(value)
                              else ("X12-D009", f"{value!r} is not a valid time", False))
    if kind == "R" or (kind is not None and kind[0] == "N"):
        digits_of = decimal_digits if kind == "R" else numeric_digits
        name = "a decimal number" if kind == "R" else "a whole number"

        def check_number(value: str) -> Finding:
            digits = digits_of(value)
            if digits is None:
                return "X12-D006", f"{value!r} is not {name}", False
            return None if low <= digits <= high else _length(definition, digits, f"{value!r}")

        return check_number
    if kind == "B":
        return lambda value: None

    def check_text(value: str) -> Finding:
        if low <= len(value) <= high and value.isprintable():
            return None
        if not value.isprintable():
            return "X12-D006", f"{value!r} holds a control character", False
        return _length(definition, len(value), f"{value!r}")

    return check_text


class ElementRule:
    """A compiled element: its value check and the values it has accepted."""

    __slots__ = ("check", "components", "definition", "known", "position")

    def __init__(self, definition: ElementDef, position: int) -> None:
        self.definition = definition
        self.position = position
        # The empty value is always fine here: whether an element may be empty is checked apart.
        self.known: dict[str, None] = {"": None}
        self.components = (tuple(ElementRule(component, index)
                                 for index, component in enumerate(definition.components, 1))
                           if definition.components is not None else None)
        self.check = _value_check(definition) if definition.components is None else None

    def value(self, value: str) -> Finding:
        """Check a non-empty simple value, remembering it when it passes."""
        if value in self.known:
            return None
        found = self.check(value)  # type: ignore[misc]
        if found is None and len(self.known) < KNOWN_VALUES_PER_ELEMENT:
            self.known[value] = None
        return found


class _Note(NamedTuple):
    """A compiled syntax note: its letter, its 0-based positions, and the lowest of them."""

    kind: str
    positions: tuple[int, ...]
    first: int


class SegmentRule:
    """A compiled segment definition; :meth:`check` validates a segment's elements."""

    __slots__ = ("elements", "known", "mandatory", "notes", "present_ok", "required_any", "segment_id")

    def __init__(self, segment_id: str, definition: SegmentDef) -> None:
        self.segment_id = segment_id
        self.elements = tuple(ElementRule(element, index)
                              for index, element in enumerate(definition.elements, 1))
        self.known = tuple(rule.known for rule in self.elements)
        self.mandatory = tuple(index for index, element in enumerate(definition.elements) if element.req == "M")
        notes = [_Note(note[0], positions, min(positions))
                 for note in definition.syntax
                 for positions in [tuple(int(note[i:i + 2]) - 1 for i in range(1, len(note), 2))]]
        # An R note (at least one present) can fail however short the segment; the others need one of
        # their elements present, so checking stops at the first note beyond the segment's last element.
        self.required_any = tuple(note for note in notes if note.kind == "R")
        self.notes = tuple(sorted((note for note in notes if note.kind != "R"), key=lambda note: note.first))
        self.present_ok: dict[tuple[bool, ...], None] = {}
        """Which-elements-are-present patterns already found to satisfy the mandatory and syntax rules."""

    def check(self, elements: list[Element], separator: str = ":") -> list[Problem]:
        """The defects of `elements` (a segment's, ID excluded); empty when there are none.

        `separator` is the interchange's component separator, used to copy a bad composite's value.
        """
        problems: list[Problem] = []
        rules = self.elements
        count = len(elements)
        if count > len(rules):
            problems.append(Problem("X12-D003", f"{self.segment_id} has {count} elements, at most {len(rules)} "
                                    "are defined", len(rules) + 1, None, None,
                                    _text(elements[len(rules)], separator)))
        for value, known, rule in zip(elements, self.known, rules, strict=False):
            if value.__class__ is str:
                if value not in known:
                    check = rule.check
                    if check is None:  # a composite written without its component separator
                        self._composite(value, rule, problems, separator)
                        continue
                    found = check(value)  # type: ignore[arg-type]
                    if found is not None:
                        problems.append(self._problem(found, rule, None, value))  # type: ignore[arg-type]
                    elif len(known) < KNOWN_VALUES_PER_ELEMENT:
                        known[value] = None  # type: ignore[index]
            elif value:
                self._composite(value, rule, problems, separator)
        # Mandatory elements and syntax notes depend only on which elements are present (hold any text,
        # component separators included): remember the patterns that passed.
        pattern = tuple(map(bool, elements))
        if pattern in self.present_ok:
            return problems
        before = len(problems)
        self._presence(elements, problems, separator)
        if len(problems) == before and len(self.present_ok) < KNOWN_VALUES_PER_ELEMENT:
            self.present_ok[pattern] = None
        return problems

    def _presence(self, elements: list[Element], problems: list[Problem], separator: str) -> None:
        """Mandatory elements and syntax notes."""
        count = len(elements)
        for index in self.mandatory:
            if index >= count or not elements[index]:
                rule = self.elements[index]
                problems.append(Problem("X12-D001", f"{self._name(rule)} is mandatory and missing", index + 1,
                                        None, rule.definition.ref, None))
        for note in self.required_any:
            self._note(note, elements, problems, separator)
        for note in self.notes:
            if note.first >= count:
                break
            self._note(note, elements, problems, separator)

    def _name(self, rule: ElementRule, component: int | None = None) -> str:
        name = f"{self.segment_id}{rule.position:02d}"
        return f"{name}-{component}" if component is not None else name

    def _problem(self, found: tuple[str, str, bool], rule: ElementRule, component: ElementRule | None,
                 value: str) -> Problem:
        code, message, warning = found
        where = self._name(rule, component.position if component else None)
        ref = (component or rule).definition.ref
        return Problem(code, f"{where} {message}", rule.position, component.position if component else None,
                       ref, value, warning)

    def _composite(self, value: Element, rule: ElementRule, problems: list[Problem], separator: str) -> None:
        """A composite's components; or a simple element that holds the component separator."""
        if rule.components is None:
            problems.append(Problem("X12-D006", f"{self._name(rule)} holds the component separator",
                                    rule.position, None, rule.definition.ref, _text(value, separator)))
            return
        parts = value if isinstance(value, list) else [value]
        components = rule.components
        if len(parts) > len(components):
            problems.append(Problem("X12-D003", f"{self._name(rule)} has {len(parts)} components, at most "
                                    f"{len(components)} are defined", rule.position, len(components) + 1,
                                    rule.definition.ref, _text(value, separator)))
        for part, component in zip(parts, components, strict=False):
            if part:
                found = component.value(part)
                if found is not None:
                    problems.append(self._problem(found, rule, component, part))
        for component in components:
            missing = component.position > len(parts) or not parts[component.position - 1]
            if component.definition.req == "M" and missing:
                name = self._name(rule, component.position)
                problems.append(Problem("X12-D001", f"{name} is mandatory and missing", rule.position,
                                        component.position, component.definition.ref, None))

    def _note(self, note: _Note, elements: list[Element], problems: list[Problem], separator: str) -> None:
        """Check one syntax note; messages are only built for a violation."""
        count = len(elements)
        there = [index for index in note.positions if index < count and elements[index]]
        kind, positions = note.kind, note.positions
        if kind == "P":
            missing = [index for index in positions if index not in there] if there else []
            why = "any of {names} is present"
        elif kind == "R":
            missing = [] if there else [positions[0]]
            why = "none of {names} is present (at least one is required)"
        elif kind == "C":
            missing = [index for index in positions[1:] if index not in there] if positions[0] in there else []
            why = f"{self.segment_id}{positions[0] + 1:02d} is present"
        elif kind == "L":
            missing = [positions[1]] if positions[0] in there and len(there) == 1 else []
            why = f"{self.segment_id}{positions[0] + 1:02d} is present (one of {{names}} is required)"
        else:
            if len(there) > 1:
                self._exclusion(note, there[1], elements, problems, separator)
            return
        if not missing:
            return
        names = ", ".join(f"{self.segment_id}{index + 1:02d}" for index in positions)
        for index in missing:
            rule = self.elements[index] if index < len(self.elements) else None
            if rule is not None:
                problems.append(Problem("X12-D002", f"{self._name(rule)} is required when "
                                        f"{why.format(names=names)}", index + 1, None, rule.definition.ref,
                                        None))

    def _exclusion(self, note: _Note, index: int, elements: list[Element], problems: list[Problem],
                   separator: str) -> None:
        names = ", ".join(f"{self.segment_id}{position + 1:02d}" for position in note.positions)
        rule = self.elements[index] if index < len(self.elements) else None
        problems.append(Problem("X12-D010", f"only one of {names} may be present", index + 1, None,
                                rule.definition.ref if rule else None, _text(elements[index], separator)))


def _text(value: Element, separator: str) -> str:
    return value if isinstance(value, str) else separator.join(value)


def compile_segment(segment_id: str, definition: SegmentDef) -> SegmentRule:
    """The compiled rule of one segment definition."""
    return SegmentRule(segment_id, definition)
