"""Reading X12 end to end: tokenize, validate envelopes, parse each transaction set into a tree.

:class:`X12Reader` offers two ways to read the same input:

- :meth:`X12Reader.sets` streams transaction sets one at a time, so a file of any size with many
  sets is read in constant memory (only one set is materialized at a time). Issues outside sets
  (interchange and group envelopes, stray segments) collect in :attr:`X12Reader.issues`.
- :meth:`X12Reader.read` returns the whole :class:`~crossdock.formats.x12.tree.Document`.

:func:`read`, :func:`iter_sets` and :func:`validate_envelope` are shortcuts. Bad bytes raise
:class:`~crossdock.formats.x12.errors.X12Error`; every other defect is an issue in the result.
"""

from __future__ import annotations

from collections.abc import Iterator

from crossdock.formats.x12.definitions import Catalog, SetDefinition, default_catalog
from crossdock.formats.x12.envelope import (
    DEFAULT_MAX_TRACKED_CONTROL_NUMBERS,
    EnvelopeReader,
    Event,
    GroupEnd,
    GroupStart,
    InterchangeEnd,
    InterchangeStart,
    SetRead,
    Stray,
)
from crossdock.formats.x12.issues import Issue, Mode
from crossdock.formats.x12.parser import parse_set
from crossdock.formats.x12.tokenizer import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_SEGMENT_LENGTH, Source, Tokenizer
from crossdock.formats.x12.tree import Document, FunctionalGroup, Interchange, TransactionSet


class X12Reader:
    """Reads one input (bytes, a path, or a binary file object); see the module docstring.

    `mode` is strict or lenient (see :class:`~crossdock.formats.x12.issues.Mode`); `catalog` holds
    the set definitions (the bundled ones by default); `validate_elements` false skips data element
    checks and keeps only the structure; `max_tracked_control_numbers` bounds the memory spent on
    finding repeated control numbers (see :mod:`crossdock.formats.x12.envelope`).
    """

    def __init__(
        self,
        source: Source,
        *,
        mode: Mode = Mode.STRICT,
        catalog: Catalog | None = None,
        validate_elements: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_segment_length: int = DEFAULT_MAX_SEGMENT_LENGTH,
        encoding: str = "utf-8",
        max_tracked_control_numbers: int = DEFAULT_MAX_TRACKED_CONTROL_NUMBERS,
    ) -> None:
        self.mode = mode
        self.max_tracked_control_numbers = max_tracked_control_numbers
        self.catalog = catalog or default_catalog()
        self.validate_elements = validate_elements
        self.tokenizer = Tokenizer(source, chunk_size=chunk_size, max_segment_length=max_segment_length,
                                   encoding=encoding)
        self.issues: list[Issue] = []
        """Issues outside transaction sets, gathered by :meth:`sets` as it goes."""
        self._definitions: dict[tuple[str, str], SetDefinition | None] = {}

    def _events(self) -> Iterator[Event]:
        return iter(EnvelopeReader(self.tokenizer, self.mode, functional_groups=self.catalog.functional_groups,
                                   max_tracked_control_numbers=self.max_tracked_control_numbers))

    def _parse(self, event: SetRead) -> TransactionSet:
        key = (event.st.value(1), event.gs.value(8))
        if key not in self._definitions:
            self._definitions[key] = self.catalog.definition(*key)
        return parse_set(event.st, event.body, event.se, self._definitions[key], mode=self.mode,
                         validate_elements=self.validate_elements, isa=event.isa, gs=event.gs, issues=event.issues)

    def sets(self) -> Iterator[TransactionSet]:
        """Each transaction set as it is read; issues outside sets go to :attr:`issues`."""
        for event in self._events():
            if isinstance(event, SetRead):
                yield self._parse(event)
            elif isinstance(event, InterchangeStart | GroupStart | GroupEnd | InterchangeEnd):
                self.issues.extend(event.issues)
            else:
                self.issues.append(event.issue)

    def read(self) -> Document:
        """The whole input as a :class:`Document`."""
        document = Document()
        interchange: Interchange | None = None
        group: FunctionalGroup | None = None
        for event in self._events():
            if isinstance(event, SetRead):
                if group is not None:
                    group.sets.append(self._parse(event))
            elif isinstance(event, GroupStart):
                group = FunctionalGroup(event.gs, issues=list(event.issues))
                if interchange is not None:
                    interchange.groups.append(group)
            elif isinstance(event, GroupEnd):
                if group is not None:
                    group.ge = event.ge
                    group.issues.extend(event.issues)
                group = None
            elif isinstance(event, InterchangeStart):
                interchange = Interchange(event.isa, issues=list(event.issues))
                document.interchanges.append(interchange)
            elif isinstance(event, InterchangeEnd):
                if interchange is not None:
                    interchange.iea = event.iea
                    interchange.ta1 = event.ta1
                    interchange.issues.extend(event.issues)
                interchange = None
            elif isinstance(event, Stray):
                document.issues.append(event.issue)
        document.bom = self.tokenizer.bom
        return document


def read(source: Source, *, mode: Mode = Mode.STRICT, **options: object) -> Document:
    """The whole input as a Document; options as for :class:`X12Reader`."""
    return X12Reader(source, mode=mode, **options).read()  # type: ignore[arg-type]


def iter_sets(source: Source, *, mode: Mode = Mode.STRICT, **options: object) -> Iterator[TransactionSet]:
    """Stream the transaction sets of the input; options as for :class:`X12Reader`."""
    return X12Reader(source, mode=mode, **options).sets()  # type: ignore[arg-type]


def validate_envelope(
    source: Source,
    *,
    mode: Mode = Mode.STRICT,
    catalog: Catalog | None = None,
    max_segment_length: int = DEFAULT_MAX_SEGMENT_LENGTH,
) -> list[Issue]:
    """Envelope issues only, in constant memory (set contents are neither kept nor parsed)."""
    tokenizer = Tokenizer(source, max_segment_length=max_segment_length)
    groups = (catalog or default_catalog()).functional_groups
    found: list[Issue] = []
    for event in EnvelopeReader(tokenizer, mode, functional_groups=groups, keep_bodies=False):
        found.extend(event.issues if not isinstance(event, Stray) else [event.issue])
    return sorted(found, key=lambda issue: issue.segment or 0)
