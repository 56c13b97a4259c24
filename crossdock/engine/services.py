"""What the routes of one engine share, and how option values are made ready for a connector."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossdock.dsl.options import Deferred, ResolvedOptions
from crossdock.engine.clock import Clock, SystemClock
from crossdock.engine.errors import PermanentError
from crossdock.engine.mapping.functions import FunctionContext
from crossdock.engine.stores.base import Stores
from crossdock.formats.x12.profile import PartnerProfile


class MissingSetting(PermanentError):
    """An env or secret reference has no value when the route starts."""

    code = "ENV001"


@dataclass
class Services:
    """What routes share: stores, the clock, the data folder, function context, randomness."""

    stores: Stores
    data_dir: Path = Path("data")
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=random.Random)
    env: Mapping[str, str] | None = None
    partners: Mapping[str, PartnerProfile] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)
    """What connectors of this engine share (see ConnectorContext.shared)."""

    @property
    def functions(self) -> FunctionContext:
        return FunctionContext(clock=self.clock)


def materialize(options: ResolvedOptions, env: Mapping[str, str] | None) -> dict[str, Any]:
    """Option values for a connector: env and secret references read now; missing ones refused."""
    plain: dict[str, Any] = {}
    for key in options.values:
        value = options.get(key)
        plain[key] = resolve_value(value, env)
    return plain


def resolve_value(value: Any, env: Mapping[str, str] | None) -> Any:
    """`value` with env and secret references read now (inside lists and tuples too)."""
    if isinstance(value, Deferred):
        resolved = value.resolve(env)
        if resolved is None:
            what = "environment variable" if value.source == "env" else "secret"
            raise MissingSetting(f"{what} {value.name} is not set ({value.span})")
        return resolved
    if isinstance(value, list):
        return [resolve_value(v, env) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve_value(v, env) for v in value)
    return value
