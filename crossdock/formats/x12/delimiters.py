"""The delimiters of an interchange, read from its ISA header.

The ISA is fixed width, so its delimiters sit at fixed offsets: the element separator at offset 3,
the component separator (ISA16) at offset 104 and the segment terminator at offset 105. Real files
sometimes pad ISA fields to the wrong width; so that they stay readable, the header is located by
counting its 16 element separators rather than by offsets (the two agree on a well-formed ISA, and
the envelope validator reports a wrong width).

ISA11 is the repetition separator only when ISA12 is 00402 or later and ISA11 is not alphanumeric:
before 00402 it is the standards identifier ``U``, and many 00501 files still carry ``U``.

Delimiters must be distinct single ASCII characters that are neither letters, digits nor spaces;
CR and LF may only be the segment terminator. Anything else is an
:class:`~crossdock.formats.x12.errors.X12Error`.
"""

from __future__ import annotations

from dataclasses import dataclass

from crossdock.engine.errors import Position
from crossdock.formats.x12.errors import X12Error

ISA_WIDTH = 106
"""Length of a well-formed ISA segment, terminator included."""

MAX_ISA_LENGTH = 256
"""How far the 16th element separator of an ISA is searched for before the header is called malformed."""

REPETITION_VERSION = "00402"
"""The first ISA12 version in which ISA11 is the repetition separator."""

_LINE_BREAKS = b"\r\n"


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The separators of one interchange, and what follows each terminator in the file."""

    element: str = "*"
    component: str = ":"
    segment: str = "~"
    repetition: str | None = None
    suffix: str = ""
    """Characters written after each segment terminator (often "\\r\\n"); kept for byte-identical output."""


def _usable(byte: bytes, *, line_break_ok: bool = False) -> bool:
    if not byte.isascii() or byte.isalnum() or byte == b" ":
        return False
    return line_break_ok or byte not in _LINE_BREAKS


def _suffix_after(data: bytes, end: int, terminator: bytes) -> str:
    """The line break that follows the ISA terminator, if any (CR LF, LF or CR)."""
    if terminator == b"\n":
        return ""
    follow = data[end:end + 2]
    if terminator == b"\r":
        return "\n" if follow[:1] == b"\n" else ""
    if follow == b"\r\n":
        return "\r\n"
    if follow[:1] and follow[:1] in _LINE_BREAKS:
        return follow[:1].decode("ascii")
    return ""


def read_isa_header(data: bytes, start: int, position: Position, *, eof: bool) -> tuple[Delimiters, int] | None:
    """The delimiters of the ISA that begins at ``data[start]`` and the offset just past its terminator.

    Returns None when `data` ends before the header is complete and more input may follow (`eof`
    false). Raises :class:`X12Error` (positioned at `position`) for a truncated or malformed header
    or unusable delimiters.
    """
    element = data[start + 3:start + 4]
    if not element:
        return _need_more(eof, position)
    if not _usable(element):
        raise X12Error("X12-T003", f"ISA element separator {element!r} is not usable", position)
    limit = start + MAX_ISA_LENGTH
    cursor = start + 3
    for _ in range(15):
        cursor = data.find(element, cursor + 1, limit)
        if cursor < 0:
            if len(data) >= limit:
                raise X12Error("X12-T002", f"ISA does not have 16 elements within {MAX_ISA_LENGTH} bytes",
                               position)
            return _need_more(eof, position)
    component = data[cursor + 1:cursor + 2]
    terminator = data[cursor + 2:cursor + 3]
    if not terminator:
        return _need_more(eof, position)
    end = cursor + 3
    # Two bytes of look-ahead tell whether a line break follows each terminator.
    if not eof and len(data) < end + 2:
        return None
    if not _usable(component) or component == element:
        raise X12Error("X12-T004", f"ISA16 component separator {component!r} is not usable", position)
    if not _usable(terminator, line_break_ok=True) or terminator in (element, component):
        raise X12Error("X12-T005", f"ISA segment terminator {terminator!r} is not usable", position)
    if terminator in data[start:cursor]:
        raise X12Error("X12-T002", "ISA has fewer than 16 elements before its segment terminator", position)
    fields = data[start:cursor].split(element)
    repetition = _repetition(fields, (element, component, terminator))
    delimiters = Delimiters(
        element=element.decode("ascii"),
        component=component.decode("ascii"),
        segment=terminator.decode("ascii"),
        repetition=repetition,
        suffix=_suffix_after(data, end, terminator),
    )
    return delimiters, end


def _need_more(eof: bool, position: Position) -> None:
    if eof:
        raise X12Error("X12-T002", "input ends inside the ISA header", position)
    return None


def _repetition(fields: list[bytes], taken: tuple[bytes, ...]) -> str | None:
    """ISA11 when it is a repetition separator (see the module docstring), else None."""
    isa11, isa12 = fields[11], fields[12]
    if len(isa11) != 1 or not _usable(isa11) or isa11 in taken:
        return None
    if not (isa12.isdigit() and len(isa12) == 5 and isa12.decode("ascii") >= REPETITION_VERSION):
        return None
    return isa11.decode("ascii")
