"""What an acknowledgment says about what was read: the building blocks of 997, 999 and TA1.

From the issues of a parsed :class:`~crossdock.formats.x12.tree.Document`, these functions derive the
content an acknowledgment generator writes, without writing it:

- :func:`set_response`: AK5 / IK5 (accepted, accepted with errors, rejected, and the set codes) and
  the AK3 / IK3 segment notes with their AK4 / IK4 element notes;
- :func:`group_response`: AK9 (group code, sets included, received and accepted, group codes);
- :func:`interchange_note`: TA1 (acknowledgment code and note code);
- :func:`group_content`: both of the first two for one group, made consistent: in a rejected group
  every set is rejected and none counts as accepted.

Errors reject; warnings that stand for a defect (a lenient reading of a count off by one, say) accept
"with errors"; warnings that are no defect (X12-D011) are not reported.

:mod:`crossdock.formats.x12.ackwriter` writes the 997, 999 and TA1 from these. The other way round,
:func:`received_acknowledgments` reads the 997s and 999s a partner sent into :class:`AckReceipt`
values, what :meth:`crossdock.engine.stores.edi.SentLog.reconcile` needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from crossdock.formats.x12.issues import Issue
from crossdock.formats.x12.tree import Document, FunctionalGroup, Interchange, Loop, TransactionSet

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
    return group_content(group)[0]


def group_content(group: FunctionalGroup, *, reject: bool = False) -> tuple[GroupResponse, list[SetResponse]]:
    """AK9 and the AK2 ... AK5 content of every set of `group`.

    The group is rejected when it has an error of its own (a GE missing, say), when every set is
    rejected, or when `reject` says so (its interchange was rejected and no TA1 answers that). A
    rejected group accepts no set: each set's AK501 becomes R, its codes kept.
    """
    responses = [set_response(ts) for ts in group.sets]
    accepted = sum(1 for response in responses if response.code != REJECTED)
    group_issues = _reported(group.issues)
    errors = list(dict.fromkeys(issue.ack.ak9 for issue in group_issues if issue.ack.ak9))
    declared = group.ge.value(1) if group.ge is not None else ""
    included = int(declared) if declared.isdigit() else len(group.sets)
    if reject or any(issue.is_error for issue in group_issues) or (responses and accepted == 0):
        code = REJECTED
        responses = [replace(response, code=REJECTED) for response in responses]
        accepted = 0
    elif accepted < len(responses):
        code = PARTIALLY_ACCEPTED
    elif group_issues or any(response.code == ACCEPTED_WITH_ERRORS for response in responses):
        code = ACCEPTED_WITH_ERRORS
    else:
        code = ACCEPTED
    return GroupResponse(code, included, len(responses), accepted, errors), responses


def interchange_note(interchange: Interchange) -> tuple[str, str]:
    """TA104 and TA105 for `interchange`: the verdict and the first interchange note code."""
    issues = [issue for issue in _reported(interchange.issues) if issue.ack.ta1]
    code = next((issue.ack.ta1 for issue in issues if issue.is_error), None) or next(
        (issue.ack.ta1 for issue in issues), None)
    return _verdict(issues), code or NO_ERROR


ACKNOWLEDGMENT_SETS = frozenset({"997", "999"})


@dataclass(frozen=True)
class AckReceipt:
    """One 997 or 999 received: who sent it, which group it answers and what it says.

    `group_control` is AK102 without leading zeros (crossdock writes GS06 unpadded, so it matches the
    sent log's key); `sets` maps each AK202 (ST02 as the partner echoes it) to its AK501 / IK501.
    Sets the acknowledgment does not list take `group_status` (partners often list only sets in error).
    """

    sender_qualifier: str
    """ISA05 of the interchange that carried the acknowledgment."""
    sender: str
    """ISA06, trimmed: the partner acknowledging."""
    group_sender: str
    """GS02 of the acknowledgment's group."""
    kind: str
    """997 or 999."""
    control_number: str
    """ST02 of the acknowledgment itself."""
    functional_id: str
    """AK101: the kind of group acknowledged (PR, SH, IN...)."""
    group_control: str
    group_status: str
    """AK901: A, E, P or R."""
    group_errors: list[str]
    """AK905 and later: the group's syntax error codes."""
    sets: dict[str, str]
    set_errors: dict[str, list[str]]
    """AK502 / IK502 and later, per ST02, for sets that have some."""
    issues: list[Issue]
    """What is wrong with the acknowledgment itself, as read."""


def _set_answer(loop: Loop) -> tuple[str, str, list[str]] | None:
    """(AK202, AK501, codes) of an AK2 loop; None without AK2 control number or AK5/IK5."""
    ak2 = loop.trigger
    trailer = next((child for child in loop.children
                    if not isinstance(child, Loop) and child.id in ("AK5", "IK5")), None)
    if ak2 is None or trailer is None or not ak2.value(2) or not trailer.value(1):
        return None
    codes = [trailer.value(position) for position in range(2, 7) if trailer.value(position)]
    return ak2.value(2), trailer.value(1), codes


def _normalized(control: str) -> str:
    return str(int(control)) if control.isascii() and control.isdigit() else control


def received_acknowledgments(document: Document) -> list[AckReceipt]:
    """The 997s and 999s in `document`, one :class:`AckReceipt` per set.

    An acknowledgment without AK1 group control number or AK9 status says nothing that can be
    reconciled and is left out (its issues are in the document).
    """
    receipts: list[AckReceipt] = []
    for interchange in document.interchanges:
        isa = interchange.isa
        for group in interchange.groups:
            for ts in group.sets:
                if ts.set_id not in ACKNOWLEDGMENT_SETS:
                    continue
                ak1, ak9 = ts.find("AK1"), ts.find("AK9")
                if ak1 is None or ak9 is None or not ak1.value(2) or not ak9.value(1):
                    continue
                sets: dict[str, str] = {}
                set_errors: dict[str, list[str]] = {}
                for loop in ts.loops("AK2"):
                    answer = _set_answer(loop)
                    if answer is not None:
                        control, status, codes = answer
                        sets[control] = status
                        if codes:
                            set_errors[control] = codes
                receipts.append(AckReceipt(
                    sender_qualifier=isa.value(5).strip(), sender=isa.value(6).strip(),
                    group_sender=group.gs.value(2), kind=ts.set_id, control_number=ts.control_number,
                    functional_id=ak1.value(1), group_control=_normalized(ak1.value(2)),
                    group_status=ak9.value(1),
                    group_errors=[ak9.value(position) for position in range(5, 10) if ak9.value(position)],
                    sets=sets, set_errors=set_errors, issues=list(ts.issues)))
    return receipts
