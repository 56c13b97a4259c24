"""Counters per route, kept by the runtime for the run summary (and exported as metrics later)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RouteStats:
    """What happened to the messages of one route since the engine started."""

    received: int = 0
    delivered: int = 0
    filtered: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retried: int = 0
    acked: int = 0
    errors: int = 0
    source_errors: int = 0
    deliveries: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "delivered": self.delivered,
            "filtered": self.filtered,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "retried": self.retried,
        }


@dataclass
class EngineStats:
    """Stats of every route."""

    routes: dict[str, RouteStats] = field(default_factory=dict)
    dead_letter_store: int = 0

    def route(self, name: str) -> RouteStats:
        return self.routes.setdefault(name, RouteStats())
