"""Writing acknowledgments: a 997 or 999 for every functional group received, and TA1s.

:func:`acknowledge` answers a read :class:`~crossdock.formats.x12.tree.Document` with one interchange
per interchange received that has something to answer::

    numbers = PartnerControlNumbers(stores.numbers, profile.name)     # or MemoryControlNumbers()
    for interchange in await acknowledge(document, profile, numbers):
        data = encode(interchange)

What it writes:

- Envelope: ISA and GS senders and receivers swapped from the received ones (the profile's ids only
  where a received one cannot be written back), ISA12 and ISA15 as received, ISA14 0, the profile's
  delimiters, new control numbers from `numbers` (one interchange number per interchange, one group
  and one set number per acknowledgment).
- One 997 or 999 per group received (the profile's ``acknowledgment_set``; a 999 only for 005010
  groups, a 997 otherwise), each in a functional group of its own (GS01 FA, GS08 the received
  group's version; ``005010X231A1`` for a 999). Groups of 997s and 999s are never acknowledged.
- AK1 (GS01, GS06, and GS08 in 005010); an AK2 loop per set (only for sets not accepted as they
  are when the profile's ``acknowledge_accepted_sets`` is false) with AK3/AK4 or IK3/IK4 notes and
  AK5/IK5; AK9 with sets included (GE01), received and accepted and the group codes. The content
  comes from :mod:`crossdock.formats.x12.acks`.
- In a 999, each IK3 carries a business unit CTX naming the set's key reference (``BEG03`` of an
  850, ``BSN02`` of an 856...), and an IK4 for an element that a syntax note requires or excludes
  because of another one carries a ``SITUATIONAL TRIGGER`` CTX pointing at that other element.
- A TA1 (TA101-TA103 from the ISA received, TA104 A, E or R, TA105 the note code) when the ISA14
  received is 1, or when the profile asks for TA1 and the interchange has a defect. An interchange
  rejected at that level (an IEA02 that differs from ISA13 in strict mode, say) is answered by the
  TA1 alone when one is wanted, since none of its groups was taken; when none is wanted, its groups
  are acknowledged as rejected.

It never raises for what was received: values that cannot be echoed as the acknowledgment's
definition allows (a control number with letters, a value holding one of our delimiters) are
replaced (``0`` for a group control number) or left out (a copy of a bad value), so that what it
writes always reads back without error.
"""

from __future__ import annotations

import datetime as dt

from crossdock.formats.x12.acks import (
    ACCEPTED,
    ACKNOWLEDGMENT_SETS,
    REJECTED,
    ElementNote,
    GroupResponse,
    SegmentNote,
    SetResponse,
    group_content,
    interchange_note,
)
from crossdock.formats.x12.definitions import Catalog, SetDefinition, base_version, default_catalog
from crossdock.formats.x12.delimiters import Delimiters
from crossdock.formats.x12.envelopes import GROUP, INTERCHANGE, SET, ControlNumberSource, profile_delimiters
from crossdock.formats.x12.envelopes import set_control_number as _set_number
from crossdock.formats.x12.generator import group_header, interchange_header
from crossdock.formats.x12.profile import PartnerProfile
from crossdock.formats.x12.segment import Element, Segment
from crossdock.formats.x12.tree import Document, FunctionalGroup, Interchange, Loop, TransactionSet

IMPLEMENTATION_999 = "005010X231A1"
"""GS08 and ST03 of a 999: the implementation guide of the 5010 implementation acknowledgment."""

BUSINESS_UNITS = {"850": "BEG03", "855": "BAK03", "856": "BSN02", "810": "BIG02", "846": "BIA03",
                  "832": "BCT02", "940": "W0502", "945": "W0602"}
"""The element a 999's business unit CTX names for each set: the reference a partner knows it by."""

MAX_ELEMENT_NOTES = 99
"""AK4 per AK3 (997) and IK4 loops per IK3 loop (999) that the definitions allow."""

_SITUATIONAL_TRIGGER = "SITUATIONAL TRIGGER"


class _Writer:
    """Writes the values of one acknowledgment interchange, checking each against our delimiters."""

    def __init__(self, delimiters: Delimiters) -> None:
        self.reserved = {delimiters.element, delimiters.component, delimiters.segment}
        if delimiters.repetition:
            self.reserved.add(delimiters.repetition)

    def usable(self, value: str, low: int = 1, high: int = 99) -> bool:
        """Whether `value` can be written as it is in an element of `low` to `high` characters."""
        return (low <= len(value) <= high and value.isprintable() and value.isascii()
                and not self.reserved.intersection(value))

    def text(self, value: str, low: int, high: int, fallback: str) -> str:
        return value if self.usable(value, low, high) else fallback


def _segment(segment_id: str, *elements: Element) -> Segment:
    """A segment with trailing empty elements trimmed."""
    values = list(elements)
    while values and not values[-1]:
        values.pop()
    return Segment(segment_id, values)


def _digits(value: str, high: int) -> bool:
    return value.isascii() and value.isdigit() and 1 <= len(value) <= high


def _codes(definition: SetDefinition, element_id: str, codes: list[str], limit: int) -> list[str]:
    """`codes` the acknowledgment's definition allows for `element_id`, at most `limit` of them."""
    element = definition.element(element_id)
    if element is not None and element.complete and element.codes:
        codes = [code for code in codes if code in element.codes]
    return codes[:limit]


class _Acknowledger:
    """Builds the acknowledgments of one interchange received."""

    def __init__(self, interchange: Interchange, profile: PartnerProfile, catalog: Catalog, when: dt.datetime):
        self.received = interchange
        self.profile = profile
        self.catalog = catalog
        self.when = when
        self.delimiters = profile_delimiters(profile)
        self.writer = _Writer(self.delimiters)

    def groups(self) -> list[FunctionalGroup]:
        """The groups received that get an acknowledgment (never those of 997s and 999s)."""
        return [group for group in self.received.groups
                if group.functional_id != "FA"
                and not (group.sets and all(ts.set_id in ACKNOWLEDGMENT_SETS for ts in group.sets))]

    async def build(self, numbers: ControlNumberSource) -> Interchange | None:
        verdict, note = interchange_note(self.received)
        wanted = self.received.isa.value(14) == "1" or (self.profile.ta1 and verdict != ACCEPTED)
        rejected = verdict == REJECTED
        kind = self.profile.acknowledgment_set
        groups = [] if (rejected and wanted) or kind is None else self.groups()
        if not groups and not wanted:
            return None
        interchange = Interchange(self._isa(await numbers.next(INTERCHANGE)))
        if wanted:
            interchange.ta1.append(self._ta1(verdict, note))
        for group in groups:
            ack_kind, version = self._kind(kind, group)  # type: ignore[arg-type]
            definition = self.catalog.definition(ack_kind, version)
            assert definition is not None  # _kind only picks versions with a definition
            response, sets = group_content(group, reject=rejected)
            gs = self._gs(group, await numbers.next(GROUP), version)
            ts = self._set(ack_kind, definition, group, response, sets, _set_number(await numbers.next(SET)))
            interchange.groups.append(FunctionalGroup(gs, [ts]))
        return interchange

    # Envelope ------------------------------------------------------------------------------------

    def _party(self, qualifier_position: int, id_position: int, fallback: tuple[str, str]) -> tuple[str, str]:
        isa = self.received.isa
        qualifier, party = isa.value(qualifier_position).strip(), isa.value(id_position).strip()
        if self.writer.usable(qualifier, 2, 2) and self.writer.usable(party, 1, 15):
            return qualifier, party
        return fallback

    def _isa(self, control_number: int) -> Segment:
        profile, isa = self.profile, self.received.isa
        our_qualifier, ours = self._party(7, 8, (profile.our_qualifier, profile.our_id))
        their_qualifier, theirs = self._party(5, 6, (profile.their_qualifier, profile.their_id))
        version = isa.value(12) if _digits(isa.value(12), 5) and len(isa.value(12)) == 5 else profile.isa_version
        usage = isa.value(15) if isa.value(15) in ("P", "T") else profile.usage_indicator
        return interchange_header(sender=ours, receiver=theirs, control_number=control_number,
                                  sender_qualifier=our_qualifier, receiver_qualifier=their_qualifier,
                                  version=version, usage=usage, when=self.when, delimiters=self.delimiters)

    def _ta1(self, verdict: str, note: str) -> Segment:
        isa = self.received.isa
        control = isa.value(13)
        control = control.zfill(9) if _digits(control, 9) else "0" * 9
        date = isa.value(9) if _digits(isa.value(9), 6) and len(isa.value(9)) == 6 else self.when.strftime("%y%m%d")
        time = isa.value(10) if _digits(isa.value(10), 4) and len(isa.value(10)) == 4 else self.when.strftime("%H%M")
        return Segment("TA1", [control, date, time, verdict, note])

    def _kind(self, kind: str, group: FunctionalGroup) -> tuple[str, str]:
        """The acknowledgment set and its GS08 for `group`: a 999 only answers a 005010 group."""
        received = group.version
        usable = self.writer.usable(received, 1, 12) and self.catalog.definition("997", received) is not None
        version = received if usable else self.profile.version
        if kind == "999" and base_version(version).startswith("005"):
            return "999", IMPLEMENTATION_999
        return "997", version

    def _gs(self, group: FunctionalGroup, control_number: int, version: str) -> Segment:
        profile, writer = self.profile, self.writer
        sender = writer.text(group.gs.value(3), 2, 15, profile.gs_sender)
        receiver = writer.text(group.gs.value(2), 2, 15, profile.gs_receiver)
        return group_header("FA", sender=sender, receiver=receiver, control_number=control_number,
                            version=version, when=self.when)

    # The set -------------------------------------------------------------------------------------

    def _set(self, kind: str, definition: SetDefinition, group: FunctionalGroup, response: GroupResponse,
             sets: list[SetResponse], control_number: str) -> TransactionSet:
        writer = self.writer
        five = definition.version.startswith("005")
        first = group.sets[0].set_id if group.sets else ""
        fallback = self.catalog.functional_groups.get(first, "ZZ")
        functional_id = group.functional_id
        ak1 = _segment("AK1", functional_id if writer.usable(functional_id, 2, 2) else fallback,
                       group.control_number if _digits(group.control_number, 9) else "0",
                       writer.text(group.version, 1, 12, "") if five else "")
        body: list[Segment | Loop] = [ak1]
        for ts, answer in zip(group.sets, sets, strict=True):
            if answer.code == ACCEPTED and not self.profile.acknowledge_accepted_sets:
                continue
            body.append(self._ak2(kind, definition, ts, answer, five))
        codes = _codes(definition, "AK905", response.errors, 5)
        body.append(_segment("AK9", response.code, *(str(min(count, 999_999)) for count in
                                                     (response.included, response.received, response.accepted)),
                             *codes))
        built = TransactionSet.build(kind, control_number, body,
                                     implementation=IMPLEMENTATION_999 if kind == "999" else None)
        built.definition = definition
        return built

    def _ak2(self, kind: str, definition: SetDefinition, ts: TransactionSet, answer: SetResponse,
             five: bool) -> Loop:
        writer = self.writer
        set_id = ts.set_id if writer.usable(ts.set_id, 3, 3) else "000"
        control = ts.control_number
        if _digits(control, 3):
            control = control.zfill(4)
        control = writer.text(control, 4, 9, "0000")
        implementation = ts.st.value(3) if five else ""
        loop = Loop("AK2", [_segment("AK2", set_id, control, writer.text(implementation, 1, 35, ""))])
        for note in answer.segments:
            note_loop = self._ik3(ts, note) if kind == "999" else self._ak3(note)
            if note_loop is not None:
                loop.children.append(note_loop)
        trailer = "IK5" if kind == "999" else "AK5"
        codes = _codes(definition, f"{trailer}02", answer.errors, 5)
        loop.children.append(_segment(trailer, answer.code, *codes))
        return loop

    def _note(self, segment_id: str, note: SegmentNote) -> Segment | None:
        """AK3 / IK3, or None when the segment ID or position cannot be written."""
        if note.position is None or not self.writer.usable(note.segment_id, 2, 3):
            return None
        loop_id = self.writer.text(note.loop_id or "", 1, 4, "")
        return _segment(segment_id, note.segment_id, str(note.position), loop_id, note.code)

    def _element(self, segment_id: str, element: ElementNote) -> Segment:
        position: Element = (str(element.position) if element.component is None
                             else [str(element.position), str(element.component)])
        reference = element.reference if element.reference and _digits(element.reference, 4) else ""
        value = (element.value or "")[:99]
        return _segment(segment_id, position, reference, element.code, value if self.writer.usable(value) else "")

    def _ak3(self, note: SegmentNote) -> Loop | None:
        ak3 = self._note("AK3", note)
        if ak3 is None:
            return None
        elements = [self._element("AK4", element) for element in note.elements[:MAX_ELEMENT_NOTES]]
        return Loop("AK3", [ak3, *elements])

    def _ik3(self, ts: TransactionSet, note: SegmentNote) -> Loop | None:
        ik3 = self._note("IK3", note)
        if ik3 is None:
            return None
        loop = Loop("IK3", [ik3])
        unit = self._business_unit(ts)
        if unit is not None:
            loop.children.append(unit)
        for element in note.elements[:MAX_ELEMENT_NOTES]:
            ik4 = Loop("IK4", [self._element("IK4", element)])
            trigger = _trigger(ts, note, element)
            if trigger is not None:
                ik4.children.append(_segment("CTX", _SITUATIONAL_TRIGGER, note.segment_id, str(note.position),
                                             self.writer.text(note.loop_id or "", 1, 4, ""), str(trigger)))
            loop.children.append(ik4)
        return loop

    def _business_unit(self, ts: TransactionSet) -> Segment | None:
        """CTX naming the set's key reference (``CTX*BEG03>4500012345``), when the set has one."""
        element_id = BUSINESS_UNITS.get(ts.set_id)
        value = ts.get(element_id) if element_id else None
        if element_id is None or value is None or not self.writer.usable(value, 1, 35):
            return None
        return Segment("CTX", [[element_id, value]])


def _trigger(ts: TransactionSet, note: SegmentNote, element: ElementNote) -> int | None:
    """The element whose presence made `element` required (X12-D002) or excluded (X12-D010), if any."""
    code = {"2": "PCL", "10": "E"}.get(element.code)
    definition = ts.definition.segments.get(note.segment_id) if ts.definition is not None else None
    if code is None or definition is None or element.component is not None:
        return None
    segment = next((s for s in ts.segments() if s.set_index == note.position and s.id == note.segment_id), None)
    if segment is None:
        return None
    for syntax in definition.syntax:
        positions = [int(syntax[i:i + 2]) for i in range(1, len(syntax), 2)]
        if syntax[0] not in code or element.position not in positions:
            continue
        present = [p for p in positions if p != element.position and segment.value(p)]
        if present:
            return present[0]
    return None


async def acknowledge(
    document: Document,
    profile: PartnerProfile,
    numbers: ControlNumberSource,
    *,
    when: dt.datetime | None = None,
    catalog: Catalog | None = None,
) -> list[Interchange]:
    """The acknowledgment interchanges that answer `document` (see the module docstring).

    `profile` says which acknowledgment to write, whether accepted sets get an AK2, whether to send
    TA1s and with which delimiters; `numbers` gives the new control numbers; `when` dates them
    (now, UTC, by default). Issues outside any interchange are not answered (there is no envelope
    to answer). Returns [] when there is nothing to acknowledge.
    """
    when = when or dt.datetime.now(dt.UTC)
    catalog = catalog or default_catalog()
    answers: list[Interchange] = []
    for received in document.interchanges:
        built = await _Acknowledger(received, profile, catalog, when).build(numbers)
        if built is not None:
            answers.append(built)
    return answers

