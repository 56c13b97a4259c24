"""What the engine does with X12 that arrives: rejection of broken sets, partner profiles, duplicates.

- :func:`rejection` turns the errors of a transaction set (or of its envelope) into one coded,
  positioned :class:`X12Rejected`, the error a dead letter records: the set is dropped from the route
  (its 997 says R) while the other sets of the file go on.
- :func:`transaction_sets` gives the sets of a document for `crossdock test` (all or nothing).
- :func:`profile_for` finds the partner a document comes from by its ISA sender, or infers one from
  the envelope when no `partner` block matches (ids swapped, version from GS08).
- :func:`interchange_keys` are the duplicate-interchange keys (sender, ISA13): a resent interchange is
  skipped, never processed twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crossdock.engine.errors import DecodeError, Position
from crossdock.formats.x12.issues import Issue
from crossdock.formats.x12.profile import PartnerProfile
from crossdock.formats.x12.tree import Document, Interchange, TransactionSet

INTERCHANGE_SCOPE = "x12-interchange"


class X12Rejected(DecodeError):
    """An X12 document or transaction set with errors; `issues` lists every one of them."""

    def __init__(self, issues: list[Issue], what: str) -> None:
        first = issues[0]
        position = Position(offset=first.offset, line=first.line, segment=first.segment, path=first.segment_id)
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        super().__init__(f"{what} rejected: {first.message}{more}", position, code=first.code)
        self.issues = issues
        self.details["issues"] = [_issue_dict(issue) for issue in issues]


def _issue_dict(issue: Issue) -> dict[str, object]:
    return {key: value for key, value in (
        ("code", issue.code), ("message", issue.message), ("segment", issue.segment), ("offset", issue.offset),
        ("line", issue.line), ("segment_id", issue.segment_id), ("element", issue.element),
        ("value", issue.value),
    ) if value is not None}


def _errors(issues: Iterable[Issue]) -> list[Issue]:
    return [issue for issue in issues if issue.is_error]


def rejection(value: object) -> X12Rejected | None:
    """The error that rejects a transaction set: its own errors, or those of the group or interchange it
    arrived in that make its content untrustworthy (a missing trailer, a control number mismatch)."""
    if isinstance(value, TransactionSet):
        errors = _errors(value.issues)
        if errors:
            return X12Rejected(errors, f"transaction set {value.set_id} {value.control_number}")
    return None


def document_rejection(document: Document) -> X12Rejected | None:
    """The errors outside any transaction set (bytes outside envelopes, broken ISA/IEA, GS/GE)."""
    errors = _errors(document.issues)
    for interchange in document.interchanges:
        errors += _errors(interchange.issues)
        for group in interchange.groups:
            errors += _errors(group.issues)
    return X12Rejected(errors, "interchange") if errors else None


def transaction_sets(document: Document) -> list[TransactionSet]:
    """Every set of `document`, for a map test; raises X12Rejected when anything has an error."""
    problem = document_rejection(document)
    if problem is not None:
        raise problem
    sets = list(document.sets())
    for ts in sets:
        problem = rejection(ts)
        if problem is not None:
            raise problem
    return sets


def profile_for(interchange: Interchange, partners: Mapping[str, PartnerProfile]) -> PartnerProfile:
    """The profile of the sender of `interchange` (ISA05/06), declared or inferred from the envelope."""
    isa = interchange.isa
    sender = isa.value(6).strip()
    qualifier = isa.value(5).strip()
    for profile in partners.values():
        if profile.their_id == sender and profile.their_qualifier in ("", qualifier):
            return profile
    version = interchange.groups[0].version if interchange.groups else ""
    return PartnerProfile.inferred(qualifier, sender, isa.value(7), isa.value(8), version)


def interchange_keys(document: Document) -> list[tuple[Interchange, str]]:
    """Each interchange with its duplicate key: sender qualifier and id, and ISA13."""
    keys = []
    for interchange in document.interchanges:
        isa = interchange.isa
        keys.append((interchange, f"{isa.value(5).strip()}:{isa.value(6).strip()}:{interchange.control_number}"))
    return keys
