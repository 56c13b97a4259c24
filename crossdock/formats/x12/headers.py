"""Field checks of the envelope headers: ISA, GS and ST, one segment at a time.

These checks look at one header's own elements (formats, widths, code values). Whether headers and
trailers agree, counts add up and control numbers are unique is the envelope walker's job
(:mod:`crossdock.formats.x12.envelope`).
"""

from __future__ import annotations

from collections.abc import Mapping

from crossdock.formats.x12.datatypes import is_date, is_time
from crossdock.formats.x12.delimiters import REPETITION_VERSION
from crossdock.formats.x12.issues import Issue, Mode, make_issue
from crossdock.formats.x12.segment import Segment

ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
"""Fixed width of ISA01 to ISA16; with the ID, 16 separators and the terminator they make 106."""

_PADDED_FIELDS = (2, 4, 6, 8)
"""ISA fields that are free text padded with spaces; the others have checks of their own."""

AUTHORIZATION_QUALIFIERS = frozenset({"00", "03"})
SECURITY_QUALIFIERS = frozenset({"00", "01"})
# I05 interchange ID qualifiers: the numbered codes 01 to 38 and the lettered ones in use.
ID_QUALIFIERS = frozenset({f"{n:02d}" for n in range(1, 39)} | {"AM", "NR", "SA", "SN", "ZZ"})
ACK_REQUESTED = frozenset({"0", "1"})
USAGE_INDICATORS = frozenset({"P", "T"})
AGENCY_CODES = frozenset({"X", "T"})


def text(segment: Segment, position: int, component: str) -> str:
    """Element `position` as it was written ("" when absent), composites joined back with `component`."""
    value = segment.element(position)
    if value is None:
        return ""
    return value if isinstance(value, str) else component.join(value)


class _Checker:
    """Collects the issues of one header segment."""

    def __init__(self, segment: Segment, mode: Mode, component: str) -> None:
        self.segment = segment
        self.mode = mode
        self.component = component
        self.issues: list[Issue] = []

    def value(self, position: int) -> str:
        return text(self.segment, position, self.component)

    def add(self, code: str, message: str, position: int, *, tolerable: bool = False) -> None:
        self.issues.append(make_issue(code, message, self.mode, tolerable=tolerable, at=self.segment,
                                      element=position, value=self.value(position)))

    def one_of(self, code: str, position: int, allowed: frozenset[str], what: str) -> None:
        if self.value(position) not in allowed:
            self.add(code, f"{self.segment.id}{position:02d} {what} {self.value(position)!r} is not one of "
                           f"{', '.join(sorted(allowed))}", position)


def check_isa(isa: Segment, mode: Mode, component: str) -> list[Issue]:
    """Formats, widths and codes of the ISA's 16 elements."""
    c = _Checker(isa, mode, component)
    for position in _PADDED_FIELDS:
        if len(c.value(position)) != ISA_WIDTHS[position - 1]:
            c.add("X12-E001", f"ISA{position:02d} is {len(c.value(position))} characters wide, not "
                              f"{ISA_WIDTHS[position - 1]}: the ISA is not fixed width", position, tolerable=True)
    c.one_of("X12-E008", 1, AUTHORIZATION_QUALIFIERS, "authorization information qualifier")
    c.one_of("X12-E009", 3, SECURITY_QUALIFIERS, "security information qualifier")
    c.one_of("X12-E010", 5, ID_QUALIFIERS, "sender ID qualifier")
    c.one_of("X12-E011", 7, ID_QUALIFIERS, "receiver ID qualifier")
    if not c.value(6).strip():
        c.add("X12-E012", "ISA06 interchange sender ID is blank", 6)
    if not c.value(8).strip():
        c.add("X12-E013", "ISA08 interchange receiver ID is blank", 8)
    if len(c.value(9)) != 6 or not is_date(c.value(9)):
        c.add("X12-E002", f"ISA09 {c.value(9)!r} is not a valid YYMMDD date", 9)
    if len(c.value(10)) != 4 or not is_time(c.value(10)):
        c.add("X12-E003", f"ISA10 {c.value(10)!r} is not a valid HHMM time", 10)
    _check_isa11(c)
    version = c.value(12)
    if len(version) != 5 or not version.isascii() or not version.isdigit():
        c.add("X12-E015", f"ISA12 version {version!r} is not 5 digits", 12)
    control = c.value(13)
    if not control.isascii() or not control.isdigit():
        c.add("X12-E004", f"ISA13 control number {control!r} is not numeric", 13)
    elif len(control) != 9:
        c.add("X12-E005", f"ISA13 control number {control!r} is not zero-padded to 9 digits", 13,
              tolerable=True)
    c.one_of("X12-E006", 14, ACK_REQUESTED, "acknowledgment requested")
    c.one_of("X12-E007", 15, USAGE_INDICATORS, "usage indicator")
    return c.issues


def _check_isa11(c: _Checker) -> None:
    """ISA11 is `U` before 00402; from 00402 on a repetition separator, though `U` is still common."""
    isa11, version = c.value(11), c.value(12)
    if isa11 == "U":
        return
    if version < REPETITION_VERSION:
        c.add("X12-E014", f"ISA11 {isa11!r} must be U (standards identifier) in version {version}", 11)
    elif len(isa11) != 1 or isa11.isalnum() or isa11 == " ":
        c.add("X12-E014", f"ISA11 {isa11!r} is neither U nor a repetition separator", 11)


def check_gs(gs: Segment, mode: Mode, component: str) -> list[Issue]:
    """Formats of GS01 to GS08."""
    c = _Checker(gs, mode, component)
    functional_id = c.value(1)
    if len(functional_id) != 2 or not functional_id.isascii() or not functional_id.isalpha():
        c.add("X12-E035", f"GS01 functional identifier {functional_id!r} is not a 2-letter code", 1)
    for position, what in ((2, "application sender's code"), (3, "application receiver's code")):
        if not 2 <= len(c.value(position)) <= 15:
            c.add("X12-E040", f"GS{position:02d} {what} {c.value(position)!r} must be 2 to 15 characters",
                  position)
    if len(c.value(4)) != 8 or not is_date(c.value(4)):
        c.add("X12-E037", f"GS04 {c.value(4)!r} is not a valid CCYYMMDD date", 4)
    if not is_time(c.value(5)):
        c.add("X12-E038", f"GS05 {c.value(5)!r} is not a valid HHMM[SS[dd]] time", 5)
    control = c.value(6)
    if not 1 <= len(control) <= 9 or not control.isascii() or not control.isdigit():
        c.add("X12-E034", f"GS06 group control number {control!r} is not 1 to 9 digits", 6)
    c.one_of("X12-E040", 7, AGENCY_CODES, "responsible agency code")
    if not 1 <= len(c.value(8)) <= 12:
        c.add("X12-E036", f"GS08 version / release code {c.value(8)!r} must be 1 to 12 characters", 8)
    return c.issues


def check_st(
    st: Segment,
    mode: Mode,
    component: str,
    functional_id: str | None,
    functional_groups: Mapping[str, str] | None,
) -> list[Issue]:
    """Formats of ST01 and ST02, and whether the set belongs in a group of `functional_id`.

    `functional_groups` maps a set ID to the GS01 code of its group (850 to PO...); sets it does not
    know are not checked.
    """
    c = _Checker(st, mode, component)
    set_id = c.value(1)
    if len(set_id) != 3 or not set_id.isascii() or not set_id.isdigit():
        c.add("X12-E053", f"ST01 transaction set identifier {set_id!r} is not 3 digits", 1)
    control = c.value(2)
    if not control or len(control) > 9:
        c.add("X12-E054", f"ST02 control number {control!r} must be 4 to 9 characters", 2)
    elif len(control) < 4:
        unpadded = control.isascii() and control.isdigit()
        c.add("X12-E054", f"ST02 control number {control!r} is shorter than 4 characters", 2,
              tolerable=unpadded)
    expected = functional_groups.get(set_id) if functional_groups else None
    if expected and functional_id and expected != functional_id:
        c.add("X12-E056", f"a {set_id} belongs in a {expected} functional group, not {functional_id}", 1)
    return c.issues
