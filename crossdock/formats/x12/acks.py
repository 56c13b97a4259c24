"""What an acknowledgment says about what was read: the building blocks of 997, 999 and TA1.

From the issues of a parsed :class:`~crossdock.formats.x12.tree.Document`, these functions derive the
content an acknowledgment generator writes, without writing it:

- :func:`set_response`: AK5 / IK5 (accepted, accepted with errors, rejected, and the set codes) and
  the AK3 / IK3 segment notes with their AK4 / IK4 element notes;
- :func:`group_response`: AK9 (group code, sets included, received and accepted, group codes);
- :func:`interchange_note`: TA1 (acknowledgment code and note code).

Errors reject; warnings that stand for a defect (a lenient reading of a count off by one, say) accept
"with errors"; warnings that are no defect (X12-D011) are not reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crossdock.formats.x12.issues import Issue
from crossdock.formats.x12.tree import FunctionalGroup, Interchange, TransactionSet

ACCEPTED, ACCEPTED_WITH_ERRORS, PARTIALLY_ACCEPTED, REJECTED = "A", "E", "P", "R"
SEGMENT_HAS_ELEMENT_ERRORS = "8"
SEGMENTS_IN_ERROR = "5"
NO_ERROR = "000"


@dataclass(frozen=True)
class ElementNote:
    """AK4 / IK4: element position (and component), reference number, error code, copy of the value."""

    position: int
    component: int | None
    reference: str | None
    code: str
    value: str | None


@dataclass
class SegmentNote:
    """AK3 / IK3: segment ID, position in the set, loop, error code; and its element notes."""

    segment_id: str
    position: int | None
    loop_id: str | None
    code: str
    elements: list[ElementNote] = field(default_factory=list)


@dataclass
class SetResponse:
    """AK2 ... AK5 for one set: its ID and control number, the AK501 code, AK502+ codes, segment notes."""

    set_id: str
    control_number: str
    code: str
    errors: list[str]
    segments: list[SegmentNote]


@dataclass
class GroupResponse:
    """AK9: the AK901 code, sets included (GE01 or counted), received, accepted, AK905+ codes."""

    code: str
    included: int
    received: int
    accepted: int
    errors: list[str]


def _reported(issues: list[Issue]) -> list[Issue]:
    """Errors, and warnings that stand for a defect an acknowledgment can name."""
    return [issue for issue in issues if issue.is_error or issue.ack]


def _verdict(issues: list[Issue]) -> str:
    if any(issue.is_error for issue in issues):
        return REJECTED
    return ACCEPTED_WITH_ERRORS if issues else ACCEPTED


def set_response(ts: TransactionSet) -> SetResponse:
    """The AK2 loop content for `ts`."""
    issues = _reported(ts.issues)
    notes: dict[int | None, SegmentNote] = {}
    for issue in issues:
        ak3, ak4 = issue.ack.ak3, issue.ack.ak4
        if not (ak3 or ak4):
            continue
        note = notes.get(issue.segment)
        if note is None:
            note = notes[issue.segment] = SegmentNote(issue.segment_id or "", issue.set_position, issue.loop_id,
                                                      ak3 or SEGMENT_HAS_ELEMENT_ERRORS)
        elif ak3:
            note.code = ak3
        if ak4 and issue.element is not None:
            note.elements.append(ElementNote(issue.element, issue.component, issue.element_ref, ak4, issue.value))
    errors = list(dict.fromkeys(issue.ack.ak5 for issue in issues if issue.ack.ak5))
    if notes and SEGMENTS_IN_ERROR not in errors:
        errors.append(SEGMENTS_IN_ERROR)
    return SetResponse(ts.set_id, ts.control_number, _verdict(issues), errors, list(notes.values()))


def group_response(group: FunctionalGroup) -> GroupResponse:
    """The AK9 content for `group`."""
    responses = [set_response(ts) for ts in group.sets]
    accepted = sum(1 for response in responses if response.code != REJECTED)
    group_issues = _reported(group.issues)
    errors = list(dict.fromkeys(issue.ack.ak9 for issue in group_issues if issue.ack.ak9))
    declared = group.ge.value(1) if group.ge is not None else ""
    included = int(declared) if declared.isdigit() else len(group.sets)
    if any(issue.is_error for issue in group_issues) or (responses and accepted == 0):
        code = REJECTED
    elif accepted < len(responses):
        code = PARTIALLY_ACCEPTED
    elif group_issues or any(response.code == ACCEPTED_WITH_ERRORS for response in responses):
        code = ACCEPTED_WITH_ERRORS
    else:
        code = ACCEPTED
    return GroupResponse(code, included, len(responses), accepted, errors)


def interchange_note(interchange: Interchange) -> tuple[str, str]:
    """TA104 and TA105 for `interchange`: the verdict and the first interchange note code."""
    issues = [issue for issue in _reported(interchange.issues) if issue.ack.ta1]
    code = next((issue.ack.ta1 for issue in issues if issue.is_error), None) or next(
        (issue.ack.ta1 for issue in issues), None)
    return _verdict(issues), code or NO_ERROR
