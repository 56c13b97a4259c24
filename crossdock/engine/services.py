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
from crossdock.ops import NULL_OBSERVER, StageObserver
from crossdock.ops.logging import SECRETS


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
    observer: StageObserver = NULL_OBSERVER
    """Told of every stage transition (logs, metrics, traces); an Engine installs its Telemetry here."""

    @property
    def functions(self) -> FunctionContext:
        return FunctionContext(clock=self.clock)


def materialize(options: ResolvedOptions, env: Mapping[str, str] | None) -> dict[str, Any]:
    """Option values for a connector: env and secret references read now; missing ones refused.

    The values of options declared secret, wherever they come from, join the secrets that logs and
    dead letters never show (crossdock.ops.logging.SECRETS).
    """
    plain: dict[str, Any] = {}
    for key, entry in options.values.items():
        value = plain[key] = resolve_value(options.get(key), env)
        if any(item.spec.secret for item in (entry if isinstance(entry, list) else [entry])):
            for item in value if isinstance(value, list) else [value]:
                SECRETS.add(item)
    return plain


def resolve_value(value: Any, env: Mapping[str, str] | None) -> Any:
    """`value` with env and secret references read now (inside lists and tuples too).

    Secrets read are remembered in crossdock.ops.logging.SECRETS, and so is the password of a URL
    read from the environment (`amqp://user:password@host`).
    """
    if isinstance(value, Deferred):
        resolved = value.resolve(env)
        if resolved is None:
            what = "environment variable" if value.source == "env" else "secret"
            raise MissingSetting(f"{what} {value.name} is not set ({value.span})")
        if value.source == "secret":
            SECRETS.add(resolved)
        else:
            SECRETS.add_url_password(resolved)
        return resolved
    if isinstance(value, list):
        return [resolve_value(v, env) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve_value(v, env) for v in value)
    return value
