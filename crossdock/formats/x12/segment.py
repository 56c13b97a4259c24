"""One X12 segment: its ID, its data elements, and where it was read.

Elements exclude the segment ID, so ``elements[0]`` is element 01 (``BEG01``). A composite element is
a list of its components; a simple element is a string. An element that uses the repetition
separator is kept as one string with the separator in it (see :mod:`crossdock.formats.x12.delimiters`).

Segments are created in large numbers, so the class uses slots. A segment read from input keeps the
text of its elements and splits it on first use of :attr:`Segment.elements`: building a loop tree or
checking envelopes reads few elements, and text that is never split costs neither time nor memory.
"""

from __future__ import annotations

from crossdock.formats.x12.delimiters import Delimiters

Element = str | list[str]


class Splitter:
    """How to split the element text of an interchange's segments."""

    __slots__ = ("component", "element", "repetition")

    def __init__(self, element: str, component: str, repetition: str | None) -> None:
        self.element = element
        self.component = component
        self.repetition = repetition

    def split(self, text: str) -> list[Element]:
        """The elements of `text` (a segment without its ID and first separator)."""
        elements: list[Element] = text.split(self.element)  # type: ignore[assignment]
        if self.component in text:
            component, repetition = self.component, self.repetition
            # An element holding the repetition separator stays one string (see the module docstring).
            elements = [value.split(component) if component in value and not (repetition and repetition in value)
                        else value for value in elements]  # type: ignore[union-attr]
        return elements


class Segment:
    """An X12 segment with its position in the input (positions are None for segments built in code)."""

    __slots__ = ("_elements", "_splitter", "_text", "id", "index", "line", "offset", "set_index")

    def __init__(
        self,
        id: str,
        elements: list[Element] | None,
        index: int | None = None,
        offset: int | None = None,
        line: int | None = None,
        set_index: int | None = None,
        text: str | None = None,
        splitter: Splitter | None = None,
    ) -> None:
        """A segment; the tokenizer passes `elements` None with the element `text` and its `splitter`."""
        self.id = id
        self._elements = elements
        self._text = text
        self._splitter = splitter
        self.index = index
        """1-based index of the segment in the file."""
        self.offset = offset
        """Byte offset of the segment's first byte."""
        self.line = line
        """1-based line of the segment's first byte."""
        self.set_index = set_index
        """Position in the transaction set, ST being 1; None outside a set."""

    @property
    def elements(self) -> list[Element]:
        """The data elements (ID excluded), split from the segment's text on first use."""
        elements = self._elements
        if elements is None:
            text, splitter = self._text, self._splitter
            elements = splitter.split(text) if text is not None and splitter is not None else []
            self._elements = elements
        return elements

    @elements.setter
    def elements(self, value: list[Element]) -> None:
        self._elements = value

    def element(self, position: int) -> Element | None:
        """Element `position` (1-based), or None when the segment is shorter."""
        elements = self.elements
        if 0 < position <= len(elements):
            return elements[position - 1]
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
