"""The runtime's X12 work around a route's steps: after `read x12`, at `acknowledge`, at a split.

- :func:`screen_duplicates`: interchanges whose (sender, ISA13) was already processed are dropped;
  the keys of the others are recorded once the message is delivered (as `skip duplicates` keys are).
- :func:`rejection_of`: what makes a split element (a transaction set) or the document being split
  unusable; the runtime dead-letters it and the other sets go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crossdock.engine.errors import CrossdockError
from crossdock.engine.stores.base import IdempotencyStore
from crossdock.engine.x12.inbound import INTERCHANGE_SCOPE, document_rejection, interchange_keys, rejection
from crossdock.formats.x12.tree import Document, TransactionSet

# How long an interchange control number is remembered per sender (partners resend within days).
INTERCHANGE_MEMORY_SECONDS = 365 * 86400.0


@dataclass
class Screened:
    """What is left of a document after duplicate interchanges were dropped."""

    document: Document | None
    duplicates: list[str]
    pending: list[tuple[str, str, float]]


async def screen_duplicates(document: Document, store: IdempotencyStore, now: float) -> Screened:
    """Drop the interchanges already processed; `document` is None when nothing new is left."""
    kept = []
    duplicates: list[str] = []
    pending: list[tuple[str, str, float]] = []
    for interchange, key in interchange_keys(document):
        if await store.seen(INTERCHANGE_SCOPE, key, now):
            duplicates.append(key)
            continue
        kept.append(interchange)
        pending.append((INTERCHANGE_SCOPE, key, INTERCHANGE_MEMORY_SECONDS))
    if not duplicates:
        return Screened(document, [], pending)
    if not kept:
        return Screened(None, duplicates, [])
    return Screened(Document(kept, document.issues, document.bom), duplicates, pending)


def rejection_of(value: Any) -> CrossdockError | None:
    """The error that keeps `value` from going on, when it is an X12 document or transaction set."""
    if isinstance(value, TransactionSet):
        return rejection(value)
    if isinstance(value, Document):
        return document_rejection(value)
    return None
