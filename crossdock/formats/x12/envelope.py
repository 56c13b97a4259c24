"""Envelope validation: walks tokenized segments through ISA/GS/ST envelopes, one segment at a time.

:class:`EnvelopeReader` turns the tokenizer's segment stream into :data:`Event` values: an interchange
or group opening, each transaction set's segments (:class:`SetRead`), a group or interchange
closing, and issues that belong to no envelope (:class:`Stray`). Memory stays bounded by the largest
transaction set (nothing at all is kept with ``keep_bodies=False``), so a 1 GB file of many sets is
validated in constant memory.

What it checks, besides each header's own fields (:mod:`crossdock.formats.x12.headers`):
ISA13 = IEA02, IEA01 = number of groups, GS06 = GE02, GE01 = number of sets, ST02 = SE02, SE01 =
number of segments including ST and SE; missing SE, GE and IEA trailers; segments outside any
interchange, group or set; control numbers repeated in a file (ISA13), an interchange (GS06) or a
group (ST02). Repeats are looked for among the first `max_tracked_control_numbers` of each scope.

In lenient mode, control numbers that differ only in zero padding and counts off by exactly one are
warnings; so are the tokenizer's findings (unterminated last segment, wrapped lines, empty segments).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from crossdock.formats.x12.headers import check_gs, check_isa, check_st, text
from crossdock.formats.x12.issues import Issue, Mode, make_issue
from crossdock.formats.x12.segment import IsaSegment, Segment
from crossdock.formats.x12.tokenizer import Finding, Tokenizer

ENVELOPE_IDS = frozenset({"ISA", "IEA", "GS", "GE", "ST", "SE", "TA1"})
_TRAILERS = frozenset({"IEA", "GE", "SE"})

DEFAULT_MAX_TRACKED_CONTROL_NUMBERS = 100_000

# Takes a segment and keeps nothing: where set bodies are not kept.
_DISCARD: Callable[[Segment], None] = deque(maxlen=0).append


@dataclass(slots=True)
class InterchangeStart:
    """An ISA opened an interchange; `issues` are the ISA's own."""

    isa: IsaSegment
    issues: list[Issue]


@dataclass(slots=True)
class GroupStart:
    """A GS opened a functional group; `issues` are the GS's own."""

    gs: Segment
    issues: list[Issue]


@dataclass(slots=True)
class SetRead:
    """A transaction set: its ST, the segments between ST and SE, its SE (None when missing).

    `issues` are the set's envelope issues (ST fields, SE counts and control number, SE missing);
    `isa` and `gs` are the headers it travelled in. `body` is empty with ``keep_bodies=False``.
    """

    st: Segment
    body: list[Segment]
    se: Segment | None
    issues: list[Issue]
    isa: IsaSegment
    gs: Segment


@dataclass(slots=True)
class GroupEnd:
    """A functional group closed (`ge` is None when its GE is missing)."""

    gs: Segment
    ge: Segment | None
    set_count: int
    issues: list[Issue]


@dataclass(slots=True)
class InterchangeEnd:
    """An interchange closed (`iea` is None when its IEA is missing); `ta1` lists its TA1 segments."""

    isa: IsaSegment
    iea: Segment | None
    group_count: int
    ta1: list[Segment]
    issues: list[Issue]


@dataclass(slots=True)
class Stray:
    """An issue outside any envelope: segments outside an interchange, or a finding there."""

    issue: Issue


Event = InterchangeStart | GroupStart | SetRead | GroupEnd | InterchangeEnd | Stray


def control_mismatch(header: str, trailer: str) -> bool | None:
    """None when the control numbers agree; True when they differ only in zero padding, else False."""
    if header == trailer:
        return None
    same = header.isascii() and header.isdigit() and trailer.isascii() and trailer.isdigit()
    return same and int(header) == int(trailer)


def count_mismatch(declared: str, actual: int) -> bool | None:
    """None when `declared` is `actual`; True when it is off by exactly one, else False."""
    if not (declared.isascii() and declared.isdigit()):
        return False
    difference = abs(int(declared) - actual)
    return None if difference == 0 else difference == 1


class _Tracker:
    """Remembers control numbers of one scope to find repeats, up to a limit."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def repeated(self, value: str) -> bool:
        if value in self.seen:
            return True
        if len(self.seen) < self.limit:
            self.seen.add(value)
        return False


@dataclass
class _Interchange:
    isa: IsaSegment
    issues: list[Issue]
    groups: int = 0
    ta1: list[Segment] = field(default_factory=list)
    group_numbers: _Tracker | None = None


@dataclass
class _Group:
    gs: Segment
    issues: list[Issue]
    sets: int = 0
    set_numbers: _Tracker | None = None


@dataclass
class _Set:
    st: Segment
    issues: list[Issue]
    body: list[Segment] | None


class EnvelopeReader:
    """Iterate the envelope :data:`Event` values of a tokenized input (see the module docstring).

    `functional_groups` maps set IDs to their GS01 codes (850 to PO...) to check that each set sits
    in the right kind of group; without it that check is skipped.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        mode: Mode = Mode.STRICT,
        *,
        functional_groups: Mapping[str, str] | None = None,
        keep_bodies: bool = True,
        max_tracked_control_numbers: int = DEFAULT_MAX_TRACKED_CONTROL_NUMBERS,
    ) -> None:
        self.tokenizer = tokenizer
        self.mode = mode
        self.functional_groups = functional_groups
        self.keep_bodies = keep_bodies
        self.max_tracked = max_tracked_control_numbers
        self._interchange: _Interchange | None = None
        self._group: _Group | None = None
        self._set: _Set | None = None
        self._count = 0
        self._interchange_numbers = _Tracker(max_tracked_control_numbers)
        self._stray_code: str | None = None

    def __iter__(self) -> Iterator[Event]:
        findings = self.tokenizer.findings
        envelope_ids = ENVELOPE_IDS
        keep = _DISCARD
        in_set = False
        count = 0
        for block in self.tokenizer.blocks():
            for segment in block:
                if in_set and segment.id not in envelope_ids:
                    # The hot path: a segment inside a transaction set.
                    count += 1
                    segment.set_index = count
                    keep(segment)
                    continue
                self._count = count
                events: list[Event] = []
                if findings:
                    # Findings of earlier segments, and those of a trailer, belong to the envelopes
                    # open now; those of a header to the envelope it opens.
                    own = segment.index if segment.id in _TRAILERS else (segment.index or 1) - 1
                    events += self._drain(findings, own)
                events += self._envelope(segment)
                if findings:
                    events += self._drain(findings, segment.index)
                yield from events
                current = self._set
                in_set = current is not None
                keep = current.body.append if current is not None and current.body is not None else _DISCARD
                count = self._count
        self._count = count
        yield from self._drain(findings, None)
        yield from self._finish()

    # Routing -------------------------------------------------------------------------------------

    def _issue(self, code: str, message: str, at: Segment, *, tolerable: bool = False, **fields: object) -> Issue:
        return make_issue(code, message, self.mode, tolerable=tolerable, at=at, **fields)

    def _route(self, issue: Issue) -> list[Event]:
        """File `issue` with the innermost open envelope, or return it as a stray event."""
        if self._set is not None:
            self._set.issues.append(issue)
        elif self._group is not None:
            self._group.issues.append(issue)
        elif self._interchange is not None:
            self._interchange.issues.append(issue)
        else:
            return [Stray(issue)]
        return []

    def _drain(self, findings: list[Finding], upto: int | None) -> list[Event]:
        """Report the tokenizer's findings about segments up to index `upto` (all when None)."""
        events: list[Event] = []
        taken = 0
        for finding in findings:
            index = finding.segment.index
            if upto is not None and index is not None and index > upto:
                break
            taken += 1
            events += self._route(self._issue(finding.code, finding.message, finding.segment, tolerable=True))
        del findings[:taken]
        return events

    def _outside(self, segment: Segment, code: str, where: str) -> list[Event]:
        """A segment where none may be; reported once per run of such segments."""
        if self._stray_code == code:
            return []
        self._stray_code = code
        return self._route(self._issue(code, f"{segment.id} segment {where}", segment))

    def _component(self) -> str:
        return self._interchange.isa.delimiters.component if self._interchange is not None else ":"

    # Dispatch ------------------------------------------------------------------------------------

    def _envelope(self, segment: Segment) -> list[Event]:
        kind = segment.id
        if kind == "ISA":
            return [*self._close_all(segment), *self._open_interchange(segment)]  # type: ignore[arg-type]
        if kind == "TA1" and self._set is not None:
            # Not an envelope segment inside a set: the set's definition will report it.
            self._count += 1
            segment.set_index = self._count
            if self._set.body is not None:
                self._set.body.append(segment)
            return []
        events: list[Event] = []
        if kind in ("ST", "GS", "GE", "IEA") and self._set is not None:
            events += self._close_set(None, segment)
        if kind in ("GS", "IEA") and self._group is not None:
            events += self._close_group(None, segment)
        if kind == "ST" and self._group is not None:
            return events + self._open_set(segment)
        if kind == "SE" and self._set is not None:
            return self._close_set(segment, segment)
        if kind == "GE" and self._group is not None:
            return events + self._close_group(segment, segment)
        if kind == "GS" and self._interchange is not None:
            return events + self._open_group(segment)
        if kind == "IEA" and self._interchange is not None:
            return events + self._close_interchange(segment, segment)
        if kind == "TA1" and self._interchange is not None and self._group is None:
            self._interchange.ta1.append(segment)
            return events
        if self._group is not None:
            return events + self._outside(segment, "X12-E057", "between transaction sets")
        if self._interchange is not None:
            return events + self._outside(segment, "X12-E041", "outside any functional group")
        return events + self._outside(segment, "X12-E020", "outside any interchange")

    def _close_all(self, at: Segment) -> list[Event]:
        events: list[Event] = []
        if self._set is not None:
            events += self._close_set(None, at)
        if self._group is not None:
            events += self._close_group(None, at)
        if self._interchange is not None:
            events += self._close_interchange(None, at)
        return events

    def _finish(self) -> list[Event]:
        """Close what is open at the end of input; missing trailers are positioned at the end."""
        tokenizer = self.tokenizer
        end = Segment("", [], tokenizer.count + 1, tokenizer.end_offset, tokenizer.end_line)
        return self._close_all(end)

    # Interchanges --------------------------------------------------------------------------------

    def _open_interchange(self, isa: IsaSegment) -> list[Event]:
        self._stray_code = None
        issues = check_isa(isa, self.mode, isa.delimiters.component)
        control = text(isa, 13, isa.delimiters.component)
        if self._interchange_numbers.repeated(control):
            issues.append(self._issue("X12-E019", f"interchange control number {control} is used twice in the file",
                                      isa, element=13, value=control))
        self._interchange = _Interchange(isa, [], group_numbers=_Tracker(self.max_tracked))
        return [InterchangeStart(isa, issues)]

    def _close_interchange(self, iea: Segment | None, at: Segment) -> list[Event]:
        interchange = self._interchange
        assert interchange is not None
        self._interchange = None
        self._stray_code = None
        issues = interchange.issues
        if iea is None:
            issues.append(self._issue("X12-E018", "interchange trailer IEA missing", at, segment_id=None))
        else:
            self._check_trailer(issues, iea, "IEA", interchange.groups, interchange.isa, 13,
                                ("X12-E017", "X12-E016"), "functional groups")
        return [InterchangeEnd(interchange.isa, iea, interchange.groups, interchange.ta1, issues)]

    # Groups --------------------------------------------------------------------------------------

    def _open_group(self, gs: Segment) -> list[Event]:
        interchange = self._interchange
        assert interchange is not None and interchange.group_numbers is not None
        self._stray_code = None
        interchange.groups += 1
        component = self._component()
        issues = check_gs(gs, self.mode, component)
        control = text(gs, 6, component)
        if interchange.group_numbers.repeated(control):
            issues.append(self._issue("X12-E039", f"group control number {control} is used twice in the interchange",
                                      gs, element=6, value=control))
        self._group = _Group(gs, [], set_numbers=_Tracker(self.max_tracked))
        return [GroupStart(gs, issues)]

    def _close_group(self, ge: Segment | None, at: Segment) -> list[Event]:
        group = self._group
        assert group is not None
        self._group = None
        self._stray_code = None
        issues = group.issues
        if ge is None:
            issues.append(self._issue("X12-E031", "functional group trailer GE missing", at, segment_id=None))
        else:
            self._check_trailer(issues, ge, "GE", group.sets, group.gs, 6, ("X12-E033", "X12-E032"),
                                "transaction sets")
        return [GroupEnd(group.gs, ge, group.sets, issues)]

    # Transaction sets ----------------------------------------------------------------------------

    def _open_set(self, st: Segment) -> list[Event]:
        group = self._group
        assert group is not None and group.set_numbers is not None
        self._stray_code = None
        group.sets += 1
        component = self._component()
        st.set_index = 1
        self._count = 1
        functional_id = text(group.gs, 1, component)
        issues = check_st(st, self.mode, component, functional_id, self.functional_groups)
        control = text(st, 2, component)
        if control and group.set_numbers.repeated(control):
            issues.append(self._issue("X12-E055", f"transaction set control number {control} is used twice in "
                                      "the group", st, element=2, value=control))
        self._set = _Set(st, issues, [] if self.keep_bodies else None)
        return []

    def _close_set(self, se: Segment | None, at: Segment) -> list[Event]:
        current = self._set
        assert current is not None and self._group is not None and self._interchange is not None
        self._set = None
        self._stray_code = None
        issues = current.issues
        if se is None:
            issues.append(self._issue("X12-E050", f"transaction set trailer SE missing for ST02 "
                                      f"{text(current.st, 2, ':')}", at, segment_id=None))
        else:
            self._count += 1
            se.set_index = self._count
            self._check_trailer(issues, se, "SE", self._count, current.st, 2, ("X12-E052", "X12-E051"),
                                "segments")
        return [SetRead(current.st, current.body or [], se, issues, self._interchange.isa, self._group.gs)]

    def _check_trailer(
        self,
        issues: list[Issue],
        trailer: Segment,
        name: str,
        actual: int,
        header: Segment,
        header_position: int,
        codes: tuple[str, str],
        counted: str,
    ) -> None:
        """Check trailer element 01 (a count) against `actual` and element 02 against the header's number."""
        component = self._component()
        count_code, control_code = codes
        declared = text(trailer, 1, component)
        off = count_mismatch(declared, actual)
        if off is not None:
            issues.append(self._issue(count_code, f"{name}01 says {declared!r} {counted}, there are {actual}",
                                      trailer, tolerable=off, element=1, value=declared))
        expected = text(header, header_position, component)
        closing = text(trailer, 2, component)
        padding = control_mismatch(expected, closing)
        if padding is not None:
            header_name = f"{header.id}{header_position:02d}"
            issues.append(self._issue(control_code, f"{name}02 {closing!r} does not match {header_name} {expected!r}",
                                      trailer, tolerable=padding, element=2, value=closing))
