"""Defects found while reading X12: where they are, how bad they are, and the reading mode.

An :class:`Issue` carries a stable code (see :mod:`crossdock.formats.x12.codes`), a severity, a
plain-words message and the position of the segment concerned: its 1-based index in the file, its
byte offset, its line, and for segments inside a transaction set the position counting ST as 1 (the
AK3-02 position). Element defects also carry the element position, the data element reference
number and a copy of the bad value, everything an AK4 / IK4 needs.

Reading never stops at an issue; only input that cannot be tokenized raises
:class:`~crossdock.formats.x12.errors.X12Error`. :func:`raise_for_errors` turns errors into an
exception for callers that want all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from crossdock.dsl.diagnostics import Severity
from crossdock.engine.errors import Position
from crossdock.formats.x12.codes import AckCodes, code_info
from crossdock.formats.x12.errors import X12ValidationError
from crossdock.formats.x12.segment import Segment

__all__ = ["Issue", "Mode", "Severity", "errors_of", "make_issue", "raise_for_errors"]


class Mode(StrEnum):
    """How forgiving reading is.

    ``strict``: every defect is an error. ``lenient``: defects that real-world files commonly carry
    and that do not change the meaning (an unterminated last segment, a count off by one, control
    numbers not zero-padded, ISA padding of the wrong width, unknown segments kept in the tree...)
    are warnings; the rest stay errors.
    """

    STRICT = "strict"
    LENIENT = "lenient"


@dataclass(frozen=True, slots=True)
class Issue:
    """One defect: a stable code, a severity, a message and where it is."""

    code: str
    severity: Severity
    message: str
    segment: int | None = None
    """1-based index of the segment in the file (the ISA is segment 1)."""
    offset: int | None = None
    """Byte offset of the segment's first byte from the start of the input."""
    line: int | None = None
    """1-based line of the segment's first byte."""
    set_position: int | None = None
    """Position of the segment in its transaction set, ST being 1 (AK3-02 / IK3-02)."""
    segment_id: str | None = None
    loop_id: str | None = None
    """The loop the segment sits in (AK3-03 / IK3-03)."""
    element: int | None = None
    """1-based element position in the segment (AK4-01 / IK4-01)."""
    component: int | None = None
    """1-based component position inside a composite element."""
    element_ref: str | None = None
    """Data element reference number, e.g. "324" (AK4-02 / IK4-02)."""
    value: str | None = None
    """Copy of the bad data element (AK4-04 / IK4-04)."""

    @property
    def is_error(self) -> bool:
        """True for errors, False for warnings."""
        return self.severity is Severity.ERROR

    @property
    def ack(self) -> AckCodes:
        """The acknowledgment codes that report this defect."""
        return code_info(self.code).ack

    @property
    def path(self) -> str | None:
        """The element addressed, e.g. "BEG03" or "REF04-2", when the issue is about one."""
        if self.segment_id is None or self.element is None:
            return self.segment_id
        path = f"{self.segment_id}{self.element:02d}"
        return f"{path}-{self.component}" if self.component is not None else path

    @property
    def position(self) -> Position:
        """The position in the shape every crossdock decode error uses."""
        return Position(offset=self.offset, line=self.line, segment=self.segment, path=self.path)

    def __str__(self) -> str:
        return f"{self.code} {self.severity}: {self.message} ({self.position})"


def make_issue(
    code: str,
    message: str,
    mode: Mode,
    *,
    tolerable: bool = False,
    at: Segment | None = None,
    warning: bool = False,
    **fields: object,
) -> Issue:
    """An issue positioned at segment `at`.

    The severity is a warning when `warning` is set (a remark, never a defect) or when the defect is
    `tolerable` and the mode is lenient; otherwise it is an error.
    """
    lenient_warning = tolerable and mode is Mode.LENIENT
    severity = Severity.WARNING if warning or lenient_warning else Severity.ERROR
    if at is not None:
        fields.setdefault("segment", at.index)
        fields.setdefault("offset", at.offset)
        fields.setdefault("line", at.line)
        fields.setdefault("set_position", at.set_index)
        fields.setdefault("segment_id", at.id)
    return Issue(code, severity, message, **fields)  # type: ignore[arg-type]


def errors_of(issues: Iterable[Issue]) -> list[Issue]:
    """The issues that are errors."""
    return [issue for issue in issues if issue.is_error]


def raise_for_errors(issues: Iterable[Issue]) -> None:
    """Raise :class:`X12ValidationError` (positioned at the first error) when any issue is an error."""
    errors = errors_of(issues)
    if errors:
        raise X12ValidationError(errors)
