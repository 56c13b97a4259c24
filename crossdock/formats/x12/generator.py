"""Writing X12: a Document or Interchange (parsed or built in code) to bytes, with correct trailers.

The generator writes each segment with the interchange's delimiters (or the ones given), followed by
the delimiters' suffix (say CR LF). It computes the trailers: SE01 (segments from ST to SE), SE02 =
ST02, GE01 (sets in the group), GE02 = GS06, IEA01 (groups), IEA02 = ISA13; control numbers are those
of the headers, so renumbering means setting ISA13, GS06 and ST02. Parsing a file and writing it
back gives the same bytes when its trailers were right (a byte order mark is written back too).

:func:`interchange_header` and :func:`group_header` build fixed-width ISA and GS segments for
interchanges assembled in code, e.g. acknowledgments::

    isa = interchange_header(sender="ACME", receiver="PARTNER", control_number=12)
    gs = group_header("FA", sender="ACME", receiver="PARTNER", control_number=12, version="004010")
    ack = TransactionSet.build("997", "0001", [Segment("AK1", ["PO", "1"]), ...])
    data = encode(Interchange(isa, [FunctionalGroup(gs, [ack])]))

A value that holds one of the delimiters raises :class:`~crossdock.formats.x12.errors.X12EncodeError`.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable
from typing import IO

from crossdock.formats.x12.delimiters import REPETITION_VERSION, Delimiters
from crossdock.formats.x12.errors import X12EncodeError
from crossdock.formats.x12.headers import ISA_WIDTHS
from crossdock.formats.x12.segment import Element, IsaSegment, Segment
from crossdock.formats.x12.tokenizer import ERRORS
from crossdock.formats.x12.tree import Document, FunctionalGroup, Interchange, TransactionSet

_BOM = b"\xef\xbb\xbf"
STANDARD_DELIMITERS = Delimiters()

Target = Document | Interchange | Iterable[Interchange]


class _Writer:
    """Writes the segments of one interchange with one set of delimiters."""

    def __init__(self, out: IO[bytes], delimiters: Delimiters, encoding: str) -> None:
        self.out = out
        self.delimiters = delimiters
        self.encoding = encoding
        self.ending = delimiters.segment + delimiters.suffix
        self.reserved = {delimiters.element, delimiters.component, delimiters.segment}

    def segment(self, segment: Segment, elements: list[Element] | None = None) -> None:
        """Write `segment`, with `elements` in place of its own when given."""
        values = segment.elements if elements is None else elements
        separator = self.delimiters.element
        text = separator.join([segment.id, *(self._element(segment, value) for value in values)])
        if self.delimiters.segment in text or text.count(separator) != len(values):
            raise X12EncodeError(f"{segment.id} segment holds a segment terminator or element separator")
        self.out.write((text + self.ending).encode(self.encoding, ERRORS))

    def _element(self, segment: Segment, value: Element) -> str:
        component = self.delimiters.component
        if isinstance(value, list):
            if any(component in part for part in value):
                raise X12EncodeError(f"{segment.id} segment: component {value!r} holds the component separator")
            return component.join(value)
        if component in value and segment.id != "ISA":
            raise X12EncodeError(f"{segment.id} segment: value {value!r} holds the component separator")
        return value

    def isa(self, isa: IsaSegment) -> None:
        elements = list(isa.elements)
        elements[15] = self.delimiters.component
        repetition = self.delimiters.repetition
        if repetition and str(elements[11]) >= REPETITION_VERSION:
            elements[10] = repetition
        self.segment(isa, elements)

    def transaction_set(self, ts: TransactionSet) -> None:
        count = 0
        for segment in ts.segments():
            if segment.id == "SE" and segment is ts.se:
                continue
            self.segment(segment)
            count += 1
        trailer = ts.se if ts.se is not None else Segment("SE", [])
        self.segment(trailer, [str(count + 1), ts.control_number])

    def group(self, group: FunctionalGroup) -> None:
        self.segment(group.gs)
        for ts in group.sets:
            self.transaction_set(ts)
        self.segment(group.ge or Segment("GE", []), [str(len(group.sets)), group.control_number])

    def interchange(self, interchange: Interchange) -> None:
        self.isa(interchange.isa)
        for ta1 in interchange.ta1:
            self.segment(ta1)
        for group in interchange.groups:
            self.group(group)
        self.segment(interchange.iea or Segment("IEA", []), [str(len(interchange.groups)),
                                                              interchange.control_number])


def write(target: Target, out: IO[bytes], *, delimiters: Delimiters | None = None, encoding: str = "utf-8") -> None:
    """Write `target` to the binary stream `out`, segment by segment.

    `delimiters` replaces each interchange's own (ISA11 and ISA16 follow them).
    """
    if isinstance(target, Document):
        if target.bom:
            out.write(_BOM)
        interchanges: Iterable[Interchange] = target.interchanges
    elif isinstance(target, Interchange):
        interchanges = [target]
    else:
        interchanges = target
    for interchange in interchanges:
        _Writer(out, delimiters or interchange.delimiters, encoding).interchange(interchange)


def encode(target: Target, *, delimiters: Delimiters | None = None, encoding: str = "utf-8") -> bytes:
    """`target` as bytes; see :func:`write`."""
    out = io.BytesIO()
    write(target, out, delimiters=delimiters, encoding=encoding)
    return out.getvalue()


def encode_set(ts: TransactionSet, delimiters: Delimiters = STANDARD_DELIMITERS) -> bytes:
    """One transaction set alone (ST to SE), e.g. to store or hash it."""
    out = io.BytesIO()
    _Writer(out, delimiters, "utf-8").transaction_set(ts)
    return out.getvalue()


def _fixed(value: str, width: int, name: str) -> str:
    if len(value) > width:
        raise X12EncodeError(f"{name} {value!r} is longer than {width} characters")
    return value.ljust(width)


def interchange_header(
    *,
    sender: str,
    receiver: str,
    control_number: int,
    sender_qualifier: str = "ZZ",
    receiver_qualifier: str = "ZZ",
    version: str = "00401",
    usage: str = "P",
    acknowledgment_requested: bool = False,
    when: dt.datetime | None = None,
    delimiters: Delimiters = STANDARD_DELIMITERS,
) -> IsaSegment:
    """A fixed-width ISA (106 characters with its terminator) for an interchange built in code."""
    when = when or dt.datetime.now(dt.UTC)
    repetition = delimiters.repetition if delimiters.repetition and version >= REPETITION_VERSION else "U"
    elements: list[Element] = [
        "00", " " * 10, "00", " " * 10,
        _fixed(sender_qualifier, 2, "ISA05"), _fixed(sender, 15, "ISA06"),
        _fixed(receiver_qualifier, 2, "ISA07"), _fixed(receiver, 15, "ISA08"),
        when.strftime("%y%m%d"), when.strftime("%H%M"), repetition, _fixed(version, 5, "ISA12"),
        f"{control_number:09d}", "1" if acknowledgment_requested else "0", usage, delimiters.component,
    ]
    if [len(str(value)) for value in elements] != list(ISA_WIDTHS) or control_number >= 10**9:
        raise X12EncodeError("ISA fields do not have their fixed widths")
    return IsaSegment(elements, delimiters)


def group_header(
    functional_id: str,
    *,
    sender: str,
    receiver: str,
    control_number: int,
    version: str,
    when: dt.datetime | None = None,
) -> Segment:
    """A GS segment for a functional group built in code."""
    when = when or dt.datetime.now(dt.UTC)
    return Segment("GS", [functional_id, sender, receiver, when.strftime("%Y%m%d"), when.strftime("%H%M"),
                          str(control_number), "X", version])
