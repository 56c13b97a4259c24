"""X12: EDI interchanges from trading partners, read into loop trees and written back.

Features:

- Streaming, byte-level tokenizer (:mod:`.tokenizer`): constant memory whatever the file size,
  delimiters read from every ISA, tolerant of byte order marks, CR/LF after terminators, several
  interchanges per file and an unterminated last segment.
- Envelope validation (:mod:`.envelope`, :mod:`.headers`): ISA fixed width and field formats, control
  numbers and counts of every trailer, missing trailers, segments outside envelopes; strict or
  lenient (:class:`Mode`).
- Transaction-set definitions as data (``schemas/x12/*.yaml``, :mod:`.definitions`): 850, 855, 856,
  810, 846, 832, 940, 945, 997 in 004010 and 005010, and 999 in 005010.
- Parser (:mod:`.parser`): each set's loop tree (HL hierarchies nested), validated segment by segment
  and element by element, with acknowledgment codes on every issue (:mod:`.codes`).
- Paths over the tree (:mod:`.paths`): ``ts.get("BEG03")``, ``ts.get('N1[N101="ST"].N104')``,
  ``ts.loops("PO1")``, ``ts.select('HL[HL03="I"]')``.
- Generator (:mod:`.generator`): trailers computed, byte-identical round trips.
- Acknowledgments (:mod:`.ackwriter`, :mod:`.acks`): a 997 or 999 for every group received, TA1s;
  the 997s and 999s partners send read into :class:`AckReceipt` values for the sent log.
- Building sets from plain values, what a map ``to x12 855`` produces (:mod:`.builder`), and wrapping
  them in the partner's envelope with control numbers (:mod:`.envelopes`).

Usage::

    from crossdock.formats import x12

    document = x12.read(Path("orders.x12"), mode=x12.Mode.LENIENT)
    for ts in document.sets():
        print(ts.get("BEG03"), [line.get("PO107") for line in ts.loops("PO1")])
    for issue in document.all_issues():
        print(issue)                        # X12-E052 error: SE01 says '9' segments, there are 8 (...)
    data = x12.encode(document)

    for ts in x12.iter_sets(Path("huge.x12")):   # one set in memory at a time
        ...

The format interface of :mod:`crossdock.formats.base` (``SPEC``, ``decode``, ``encode``) lives in
:mod:`crossdock.formats.x12.codec`, the module to register under the name ``x12``.

Error codes: ``X12-T...`` (input cannot be tokenized, raised as :class:`X12Error`), ``X12-E...``
(envelope), ``X12-S...`` (segments), ``X12-D...`` (data elements); see docs/x12.md.
"""

from __future__ import annotations

from crossdock.formats.x12.acks import AckReceipt, received_acknowledgments
from crossdock.formats.x12.ackwriter import acknowledge
from crossdock.formats.x12.builder import BuildProblem, X12BuildError, build_set, check_values, validate_set
from crossdock.formats.x12.codes import CODES, AckCodes, CodeInfo
from crossdock.formats.x12.definitions import Catalog, SetDefinition, default_catalog
from crossdock.formats.x12.delimiters import Delimiters
from crossdock.formats.x12.envelope import EnvelopeReader
from crossdock.formats.x12.envelopes import (
    ControlNumberSource,
    MemoryControlNumbers,
    PartnerControlNumbers,
    envelope,
    set_control_number,
)
from crossdock.formats.x12.errors import X12EncodeError, X12Error, X12ValidationError
from crossdock.formats.x12.generator import encode, encode_set, group_header, interchange_header, write
from crossdock.formats.x12.issues import Issue, Mode, Severity, raise_for_errors
from crossdock.formats.x12.paths import PathError, parse_path
from crossdock.formats.x12.reader import X12Reader, iter_sets, read, validate_envelope
from crossdock.formats.x12.segment import IsaSegment, Segment
from crossdock.formats.x12.tokenizer import Tokenizer, tokenize
from crossdock.formats.x12.tree import Document, FunctionalGroup, Interchange, Loop, TransactionSet

__all__ = [
    "CODES",
    "AckCodes",
    "AckReceipt",
    "BuildProblem",
    "Catalog",
    "CodeInfo",
    "ControlNumberSource",
    "Delimiters",
    "Document",
    "EnvelopeReader",
    "FunctionalGroup",
    "Interchange",
    "IsaSegment",
    "Issue",
    "Loop",
    "MemoryControlNumbers",
    "Mode",
    "PartnerControlNumbers",
    "PathError",
    "Segment",
    "SetDefinition",
    "Severity",
    "Tokenizer",
    "TransactionSet",
    "X12BuildError",
    "X12EncodeError",
    "X12Error",
    "X12Reader",
    "X12ValidationError",
    "acknowledge",
    "build_set",
    "check_values",
    "default_catalog",
    "encode",
    "encode_set",
    "envelope",
    "group_header",
    "interchange_header",
    "iter_sets",
    "parse_path",
    "raise_for_errors",
    "read",
    "received_acknowledgments",
    "set_control_number",
    "tokenize",
    "validate_envelope",
    "validate_set",
    "write",
]
