"""Wrapping transaction sets into interchanges to send: control numbers and the partner's envelope.

Control numbers come from a :class:`ControlNumberSource`, one counter per kind (``"interchange"``
for ISA13, ``"group"`` for GS06, ``"set"`` for ST02). The engine passes a
:class:`PartnerControlNumbers` over the durable counters of
:class:`crossdock.engine.stores.edi.ControlNumbers`; tests and the command line use
:class:`MemoryControlNumbers`, which counts from 1.

:func:`envelope` wraps sets built for a partner (:func:`crossdock.formats.x12.builder.build_set`) in
ISA / GS ... GE / IEA with the partner profile's ids, version, usage indicator and delimiters::

    numbers = MemoryControlNumbers()
    ts = build_set(values, definition, set_control_number(await numbers.next(SET)))
    interchange = await envelope([ts], profile, numbers)
    data = encode(interchange)

Formats: ISA13 is nine digits, zero-padded; GS06 is written without padding (``12``), and ST02 with
at least four digits (``0012``, :func:`set_control_number`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Protocol

from crossdock.formats.x12.definitions import Catalog, default_catalog
from crossdock.formats.x12.delimiters import Delimiters
from crossdock.formats.x12.errors import X12EncodeError
from crossdock.formats.x12.generator import group_header, interchange_header
from crossdock.formats.x12.profile import PartnerProfile
from crossdock.formats.x12.tree import FunctionalGroup, Interchange, TransactionSet

INTERCHANGE, GROUP, SET = "interchange", "group", "set"
"""The kinds of control number: ISA13, GS06 and ST02."""


class ControlNumberSource(Protocol):
    """Where new control numbers come from: one increasing counter per kind."""

    async def next(self, kind: str) -> int:
        """The next number of `kind` (``"interchange"``, ``"group"`` or ``"set"``)."""
        ...


class PartnerCounters(Protocol):
    """Durable counters kept per partner, as :class:`crossdock.engine.stores.edi.ControlNumbers` keeps them."""

    async def next(self, partner: str, kind: str) -> int:
        """The next number of `kind` for `partner`."""
        ...


class PartnerControlNumbers:
    """The counters of one partner, as a :class:`ControlNumberSource`."""

    def __init__(self, counters: PartnerCounters, partner: str) -> None:
        self.counters = counters
        self.partner = partner

    async def next(self, kind: str) -> int:
        """The partner's next number of `kind`."""
        return await self.counters.next(self.partner, kind)


class MemoryControlNumbers:
    """Counters in memory, each starting at `start`: for tests and the command line, never for sending."""

    def __init__(self, start: int = 1) -> None:
        self.start = start
        self.issued: dict[str, int] = {}
        """The last number given out per kind."""

    async def next(self, kind: str) -> int:
        """`start` on the first call for `kind`, then one more each time."""
        value = self.issued.get(kind, self.start - 1) + 1
        self.issued[kind] = value
        return value


def set_control_number(number: int) -> str:
    """ST02 for `number`: at least four digits (``7`` gives ``0007``), as partners expect."""
    return f"{number:04d}"


def profile_delimiters(profile: PartnerProfile) -> Delimiters:
    """The delimiters of what crossdock sends to the partner of `profile`."""
    return Delimiters(element=profile.element_separator, component=profile.component_separator,
                      segment=profile.segment_terminator, repetition=profile.repetition_separator or None)


def functional_id(ts: TransactionSet, catalog: Catalog | None = None) -> str:
    """GS01 for `ts`: from its definition, else from any definition of its set ID."""
    if ts.definition is not None:
        return ts.definition.functional_group
    found = (catalog or default_catalog()).functional_groups.get(ts.set_id)
    if found is None:
        raise X12EncodeError(f"no definition says which functional group a {ts.set_id} belongs in")
    return found


async def envelope(
    sets: Iterable[TransactionSet],
    profile: PartnerProfile,
    numbers: ControlNumberSource,
    *,
    when: dt.datetime | None = None,
    catalog: Catalog | None = None,
) -> Interchange:
    """One interchange to the partner of `profile` holding `sets`, their ST02 kept as they are.

    Sets go into one functional group per GS01 (an 855 and an 856 make a PR and an SH group), in
    the order they first appear. ISA05/06 and GS02 are ours, ISA07/08 and GS03 the partner's; ISA12
    and GS08 follow the profile's version, ISA15 its usage, the delimiters its separators; ISA14 is
    0 (no TA1 asked). Raises :class:`~crossdock.formats.x12.errors.X12EncodeError` when an id does
    not fit its ISA field or a set has no known functional group.
    """
    when = when or dt.datetime.now(dt.UTC)
    grouped: dict[str, list[TransactionSet]] = {}
    for ts in sets:
        grouped.setdefault(functional_id(ts, catalog), []).append(ts)
    isa = interchange_header(
        sender=profile.our_id, receiver=profile.their_id, control_number=await numbers.next(INTERCHANGE),
        sender_qualifier=profile.our_qualifier, receiver_qualifier=profile.their_qualifier,
        version=profile.isa_version, usage=profile.usage_indicator, when=when,
        delimiters=profile_delimiters(profile))
    groups = [FunctionalGroup(group_header(code, sender=profile.gs_sender, receiver=profile.gs_receiver,
                                           control_number=await numbers.next(GROUP), version=profile.version,
                                           when=when), members)
              for code, members in grouped.items()]
    return Interchange(isa, groups)


def sent_groups(interchange: Interchange) -> list[tuple[str, list[tuple[str, str]]]]:
    """What to record in the sent log: each group's GS06 with its sets as (ST02, ST01) pairs."""
    return [(group.control_number, [(ts.control_number, ts.set_id) for ts in group.sets])
            for group in interchange.groups]
