"""Document lineage: the whole story of a business document across routes, read from the journal.

The runtime journals every step of every message under its correlation id (received, tracked, mapped,
delivered, retried, dead-lettered, replied, called, acked...), and every business key a message gets
(`track by`, `skip duplicates by`) in the journal's `journal_keys` table. :func:`trace` turns a
query into the messages it concerns and their events:

- a **business key** (`4500012345`): every message that carried exactly that key, in any route;
- a **correlation id**: that message, plus every message that shares one of its keys;
- a **dead-letter id**: the message that was dead-lettered, plus every message sharing one of its keys.

The answer is a :class:`Lineage`: one :class:`Trail` per message (route and correlation id), ordered by
when each began, each with its events in order and its outcome. `crossdock trace` prints it
(:func:`render_text`, or JSON from :meth:`Lineage.to_dict`); the console calls :func:`trace` too.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crossdock.dsl.transformer import UNIT_SECONDS
from crossdock.engine.stores.base import JournalEvent, Stores

DEFAULT_LIMIT = 5000
"""The most events one trace reads; a story longer than that is cut (and says so)."""

FOUND_BY_KEY = "business key"
FOUND_BY_CORRELATION = "correlation id"
FOUND_BY_DEAD_LETTER = "dead-letter id"

IN_FLIGHT = "in flight"
"""The outcome of a message whose source was not acknowledged yet (or whose run was stopped)."""


@dataclass
class Trail:
    """One message (a source message and what it became: split children, branches) in one route."""

    route: str
    correlation_id: str
    keys: list[str] = field(default_factory=list)
    events: list[JournalEvent] = field(default_factory=list)

    @property
    def started_at(self) -> float:
        return self.events[0].at

    @property
    def ended_at(self) -> float:
        return self.events[-1].at

    @property
    def outcome(self) -> str:
        """delivered, filtered, duplicate or dead-lettered once the source was acknowledged; a replay of a
        dead letter counts from then on; else `in flight`."""
        outcome = IN_FLIGHT
        replaying = False
        for event in self.events:
            if event.event == "acked":
                outcome = str(event.detail.get("outcome", "acked"))
            elif event.event == "replayed":
                outcome, replaying = IN_FLIGHT, True
            elif replaying and event.event in ("delivered", "replied"):
                outcome = "delivered"
            elif replaying and event.event == "dead-lettered":
                outcome = "dead-lettered"
        return outcome

    @property
    def dead_letters(self) -> list[str]:
        """Ids of the dead-letter entries this message left (for `crossdock dlq show`)."""
        return [str(e.detail["dead_letter"]) for e in self.events
                if e.event == "dead-lettered" and e.detail.get("dead_letter")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "correlation_id": self.correlation_id,
            "keys": self.keys,
            "outcome": self.outcome,
            "started_at": iso_time(self.started_at),
            "ended_at": iso_time(self.ended_at),
            "dead_letters": self.dead_letters,
            "events": [_event_dict(e) for e in self.events],
        }


@dataclass
class Lineage:
    """What :func:`trace` found for `query`: how it matched, and one trail per message in time order."""

    query: str
    found_by: list[str]
    trails: list[Trail]
    truncated: bool = False

    @property
    def found(self) -> bool:
        return bool(self.trails)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "found_by": self.found_by,
            "truncated": self.truncated,
            "messages": [t.to_dict() for t in self.trails],
        }


async def trace(stores: Stores, query: str, *, limit: int = DEFAULT_LIMIT) -> Lineage:
    """The story of `query` (a business key, a correlation id or a dead-letter id; see the module)."""
    journal = stores.journal
    found_by: list[str] = []
    by_key = await journal.find_key(query, limit=limit)
    if by_key:
        found_by.append(FOUND_BY_KEY)
    direct: list[str] = []
    if await journal.events(correlation_id=query, limit=1):
        found_by.append(FOUND_BY_CORRELATION)
        direct.append(query)
    entry = await stores.dead_letters.get(query)
    if entry is not None:
        found_by.append(FOUND_BY_DEAD_LETTER)
        direct.append(entry.correlation_id)
    related: list[str] = []
    if direct:
        # A message found by its id brings the rest of its document's story: the messages that share a key.
        for _, _, key in await journal.keys_of(direct):
            related += await journal.find_key(key, limit=limit)
    correlation_ids = list(dict.fromkeys([*by_key, *direct, *related]))
    if not correlation_ids:
        return Lineage(query, found_by, [])
    events = await journal.events(correlation_ids=correlation_ids, limit=limit)
    trails: dict[tuple[str, str], Trail] = {}
    for event in events:
        trail = trails.setdefault((event.route, event.correlation_id), Trail(event.route, event.correlation_id))
        trail.events.append(event)
    for correlation_id, route, key in await journal.keys_of(correlation_ids):
        trail = trails.get((route, correlation_id))
        if trail is not None and key not in trail.keys:
            trail.keys.append(key)
    return Lineage(query, found_by, list(trails.values()), truncated=len(events) >= limit)


def retention_seconds(text: str) -> float:
    """`--journal-retention`: a duration as route files write them (`30d`, `12h`, `90 days`), in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*", text)
    if match is None or match[2] not in UNIT_SECONDS or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30d, 12h or 90 days")
    return float(match[1]) * UNIT_SECONDS[match[2]]


def iso_time(epoch: float) -> str:
    """UTC time with milliseconds: `2024-01-20T08:00:00.125Z`."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def render_text(lineage: Lineage) -> str:
    """A readable timeline: a heading per message (route, outcome, correlation id, keys), then its events."""
    if not lineage.found:
        return f"nothing in the journal for {lineage.query!r} (not a business key, correlation id or dead-letter id)"
    routes = {t.route for t in lineage.trails}
    lines = [f"{lineage.query}: {len(lineage.trails)} message(s) in {len(routes)} route(s), "
             f"found by {' and '.join(lineage.found_by)}"]
    if lineage.truncated:
        lines.append("(the story is longer than the events read; ask with --limit for more)")
    width = max(len(e.event) for t in lineage.trails for e in t.events)
    for trail in lineage.trails:
        lines += ["", f"{trail.route}: {trail.outcome}",
                  f"  correlation {trail.correlation_id}" + (f"  keys {', '.join(trail.keys)}" if trail.keys else "")]
        for event in trail.events:
            text = " ".join(part for part in (event.step, _detail_text(event)) if part)
            lines.append(f"  {iso_time(event.at)}  {event.event.ljust(width)}  {text}".rstrip())
    return "\n".join(lines)


def _detail_text(event: JournalEvent) -> str:
    detail = dict(event.detail)
    if event.event == "received" and "source" in detail:
        return f"from {detail['source']}"
    if event.event == "acked" and "outcome" in detail:
        return str(detail["outcome"])
    if event.event == "dead-lettered":
        text = f"{detail.pop('code', '')}: {detail.pop('error', '')}"
        entry = detail.pop("dead_letter", None)
        return text + (f" (dead letter {entry})" if entry else "")
    if event.event == "tracked":
        return ", ".join(str(k) for k in detail.get("keys", []))
    return ", ".join(f"{key} {_value_text(value)}" for key, value in detail.items())


def _value_text(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    return str(value)


def _event_dict(event: JournalEvent) -> dict[str, Any]:
    return {
        "at": iso_time(event.at),
        "event": event.event,
        "step": event.step,
        "message_id": event.message_id,
        "business_key": event.business_key,
        "detail": event.detail,
    }
