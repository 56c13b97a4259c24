"""Acknowledgments out, acknowledgments in, and interchanges to partners, for the runtime.

- :func:`acknowledgments_for`: the 997/999/TA1 interchanges answering a document read, one per
  interchange received, each with the profile of its sender and control numbers from that partner's
  durable counter.
- :func:`reconcile`: received 997/999s matched against the sent log (by partner, GS06 and ST02).
- :func:`outbound`: a map's X12 output (or a set or document) wrapped in the partner's envelope with
  fresh control numbers; the groups sent are recorded in the sent log with their due time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from crossdock.engine.errors import PermanentError
from crossdock.engine.stores.edi import EdiStores
from crossdock.engine.x12.inbound import profile_for
from crossdock.formats.x12.acks import received_acknowledgments
from crossdock.formats.x12.ackwriter import acknowledge
from crossdock.formats.x12.builder import X12BuildError, build_set, validate_set
from crossdock.formats.x12.definitions import default_catalog
from crossdock.formats.x12.envelopes import (
    SET,
    ControlNumberSource,
    MemoryControlNumbers,
    PartnerControlNumbers,
    envelope,
    sent_groups,
    set_control_number,
)
from crossdock.formats.x12.generator import encode
from crossdock.formats.x12.profile import PartnerProfile
from crossdock.formats.x12.tree import Document, Interchange, TransactionSet

DEFAULT_VERSION = "004010"


def _numbers(edi: EdiStores | None, partner: str) -> ControlNumberSource:
    # without the durable store (a bare test), numbers still never repeat within the process
    return PartnerControlNumbers(edi.numbers, partner) if edi is not None else MemoryControlNumbers()


async def acknowledgments_for(
    document: Document, partners: Mapping[str, PartnerProfile], edi: EdiStores | None, kind: str | None
) -> list[bytes]:
    """The encoded acknowledgment interchanges for `document` (none for a document of 997s)."""
    answers: list[bytes] = []
    for interchange in document.interchanges:
        profile = profile_for(interchange, partners)
        if kind is not None:
            profile = replace(profile, acknowledgment=kind)
        single = Document([interchange], [], document.bom)
        for answer in await acknowledge(single, profile, _numbers(edi, profile.name)):
            answers.append(encode(answer))
    return answers


async def reconcile(document: Document, partners: Mapping[str, PartnerProfile], edi: EdiStores | None,
                    now: float) -> list[tuple[str, str, int]]:
    """Apply the 997/999s in `document` to the sent log: (partner, GS06, sets matched) per receipt."""
    if edi is None:
        return []
    matched = []
    for interchange in document.interchanges:
        profile = profile_for(interchange, partners)
        single = Document([interchange], [], False)
        for receipt in received_acknowledgments(single):
            count = await edi.sent.reconcile(profile.name, receipt.group_control, dict(receipt.sets),
                                             receipt.group_status, now)
            matched.append((profile.name, receipt.group_control, count))
    return matched


async def outbound(body: Any, set_arguments: Mapping[str, str] | None, profile: PartnerProfile,
                   edi: EdiStores | None, now: float) -> bytes:
    """`body` as an interchange to `profile`'s partner, recorded in the sent log.

    `body` is what a map `to x12 855` built (a dict of elements and loops), a transaction set, or a
    whole document (written as it is).
    """
    if isinstance(body, Document):
        return encode(body)
    numbers = _numbers(edi, profile.name)
    if isinstance(body, TransactionSet):
        sets = [body]
    elif isinstance(body, dict):
        arguments = set_arguments or {}
        set_id = arguments.get("set")
        definition = default_catalog().definition(set_id, arguments.get("version") or profile.version) \
            if set_id else None
        if definition is None:
            raise PermanentError("an X12 sink needs the set to write: map with a map `to x12 855` (say) first",
                                 code="X12-G002")
        try:
            built = build_set(body, definition, set_control_number(await numbers.next(SET)))
        except X12BuildError as error:
            raise PermanentError(f"the map's output is not a valid {set_id}: {error}", code="X12-G003") from error
        problems = [issue for issue in validate_set(built) if issue.is_error]
        if problems:  # never send the partner what our own strict reader would reject
            first = problems[0]
            raise PermanentError(f"the {set_id} built from the map is invalid: {first.code} {first.message}"
                                 + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                                 code="X12-G003", details={"issues": [f"{p.code} {p.message}" for p in problems]})
        sets = [built]
    else:
        raise PermanentError(f"an X12 sink cannot write {type(body).__name__}", code="X12-G002")
    interchange: Interchange = await envelope(sets, profile, numbers)
    if edi is not None:
        for group_control, members in sent_groups(interchange):
            await edi.sent.record(profile.name, group_control, members, sent_at=now,
                                  due_at=now + profile.acknowledgment_due)
    return encode(interchange)
