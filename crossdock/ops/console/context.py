"""What the console needs from the daemon, in one object handed to :func:`~crossdock.ops.console.console_app`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

from crossdock.engine.clock import Clock
from crossdock.engine.engine import Engine
from crossdock.engine.stores.base import Stores
from crossdock.ops.console.rates import RateSampler
from crossdock.ops.console.security import AdminAuth, CsrfGuard
from crossdock.ops.lineage import Lineage, trace

LineageSearch = Callable[[str], Awaitable[Lineage]]
"""`await search(query)`: the story of a business key, correlation id or dead-letter id."""


@dataclass
class ConsoleContext:
    """The running engine, its stores, lineage search, admin auth and the clock.

    Build it with :meth:`of` unless a part must differ from the engine's (lineage defaults to
    :func:`crossdock.ops.lineage.trace` over the engine's stores). The sampler must run for
    the rate charts to fill: the console app's lifespan runs it when the app is served on its own; a
    host app that mounts the console runs `context.sampler.run()` itself (Starlette does not run a
    mounted app's lifespan).
    """

    engine: Engine
    stores: Stores
    auth: AdminAuth
    lineage: LineageSearch
    clock: Clock
    csrf: CsrfGuard = field(default_factory=CsrfGuard)
    sampler: RateSampler = field(init=False)

    def __post_init__(self) -> None:
        engine = self.engine
        # Read through the engine each time: a reload may give it new stats.
        self.sampler = RateSampler(lambda: engine.stats.routes, self.clock)

    @classmethod
    def of(cls, engine: Engine, auth: AdminAuth, *, lineage: LineageSearch | None = None) -> ConsoleContext:
        """The context of a running engine: its stores and clock, lineage over its journal unless given."""
        stores = engine.services.stores
        return cls(engine=engine, stores=stores, auth=auth, lineage=lineage or partial(trace, stores),
                   clock=engine.services.clock)
