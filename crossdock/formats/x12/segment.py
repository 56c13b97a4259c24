"""One X12 segment: its ID, its data elements, and where it was read.

Elements exclude the segment ID, so ``elements[0]`` is element 01 (``BEG01``). A composite element is
a list of its components; a simple element is a string. An element that uses the repetition
separator is kept as one string with the separator in it (see :mod:`crossdock.formats.x12.delimiters`).

Segments are created in large numbers, so the class uses slots and plain attributes.
"""

from __future__ import annotations

from crossdock.formats.x12.delimiters import Delimiters

Element = str | list[str]


class Segment:
    """An X12 segment with its position in the input (positions are None for segments built in code)."""

    __slots__ = ("elements", "id", "index", "line", "offset", "set_index")

    def __init__(
        self,
        id: str,
        elements: list[Element],
        index: int | None = None,
        offset: int | None = None,
        line: int | None = None,
        set_index: int | None = None,
    ) -> None:
        self.id = id
        self.elements = elements
        self.index = index
        """1-based index of the segment in the file."""
        self.offset = offset
        """Byte offset of the segment's first byte."""
        self.line = line
        """1-based line of the segment's first byte."""
        self.set_index = set_index
        """Position in the transaction set, ST being 1; None outside a set."""

    def element(self, position: int) -> Element | None:
        """Element `position` (1-based), or None when the segment is shorter."""
        if 0 < position <= len(self.elements):
            return self.elements[position - 1]
        return None

    def value(self, position: int, component: int | None = None) -> str:
        """Element `position` as text, "" when absent.

        For a composite element, `component` (1-based) picks a component; without it the first
        component is returned. A simple element read with `component` 1 is the element itself.
        """
        element = self.element(position)
        if element is None:
            return ""
        if isinstance(element, list):
            index = (component or 1) - 1
            return element[index] if 0 <= index < len(element) else ""
        return element if component in (None, 1) else ""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Segment):
            return NotImplemented
        return self.id == other.id and self.elements == other.elements

    __hash__ = None  # type: ignore[assignment]  # mutable: equal segments need not hash alike

    def __repr__(self) -> str:
        return f"Segment({self.id!r}, {self.elements!r}, index={self.index}, offset={self.offset})"


class IsaSegment(Segment):
    """The ISA segment, which also carries the delimiters its interchange uses."""

    __slots__ = ("delimiters",)

    def __init__(
        self,
        elements: list[Element],
        delimiters: Delimiters,
        index: int | None = None,
        offset: int | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__("ISA", elements, index, offset, line)
        self.delimiters = delimiters
