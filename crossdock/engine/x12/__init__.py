"""X12 in routes: paths in maps and route steps, acknowledgments, duplicate interchanges, envelopes out.

The codec (crossdock.formats.x12) reads and writes X12; this package connects it to the engine: the
path compiler maps use (:mod:`.paths`), and what the runtime does around an X12 message
(:mod:`.inbound` for what arrives, :mod:`.outbound` for what is sent).
"""

from __future__ import annotations

from collections.abc import Mapping

from crossdock.engine.x12.paths import X12PathCompiler
from crossdock.formats.x12.definitions import default_catalog

DEFAULT_VERSION = "004010"


def x12_path_compiler(arguments: Mapping[str, str]) -> X12PathCompiler:
    """The path compiler for `x12 850 [005010]`: it checks paths against that set's definition."""
    set_id = arguments.get("set")
    definition = None
    if set_id:
        definition = default_catalog().definition(set_id, arguments.get("version") or DEFAULT_VERSION)
    return X12PathCompiler(definition)
