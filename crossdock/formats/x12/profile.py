"""A trading partner's EDI profile, as written in a `partner "name" ... end` block of a route file.

The profile says who the partner is in the envelopes (ISA qualifier and id, GS application id), which
version to write, which acknowledgment it wants (997 for 004010, 999 for 005010 by default), whether
accepted sets get an AK2 loop, whether it asks for TA1, and the delimiters of what crossdock sends.
Lint checks the options of a partner block against :data:`PARTNER_OPTIONS`; the runtime builds a
:class:`PartnerProfile` from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crossdock.dsl.options import OptionSpec, OptionType

VERSIONS = ("004010", "005010")

PARTNER_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("their id", OptionType.STRING, "The partner's interchange id (ISA06 on what it sends, ISA08 on "
               "what it receives).", required=True, example='"ACMEPO"'),
    OptionSpec("their qualifier", OptionType.STRING, "The qualifier of the partner's id (ISA05/ISA07).",
               default="ZZ", example='"01"'),
    OptionSpec("our id", OptionType.STRING, "Our interchange id.", required=True, example='"CROSSDOCK"'),
    OptionSpec("our qualifier", OptionType.STRING, "The qualifier of our id.", default="ZZ", example='"ZZ"'),
    OptionSpec("their group id", OptionType.STRING, "The partner's application id in GS (default: their id).",
               example='"ACMEPO"'),
    OptionSpec("our group id", OptionType.STRING, "Our application id in GS (default: our id).",
               example='"CROSSDOCK"'),
    OptionSpec("version", OptionType.STRING, "The version and release written in GS08 (the ISA12 version is "
               "derived from it).", default="004010", example='"005010"'),
    OptionSpec("acknowledgment", OptionType.CHOICE, "Which acknowledgment the partner wants for each group "
               "(default: 997 for 004010, 999 for 005010).", choices=("997", "999", "none"), example="999"),
    OptionSpec("acknowledge accepted sets", OptionType.BOOLEAN, "Send an AK2 loop for every set, not only for "
               "sets with errors.", default=True, example="no"),
    OptionSpec("ta1", OptionType.BOOLEAN, "Answer interchange-level problems with a TA1 (also when the partner "
               "sets ISA14 to 1).", default=False, example="yes"),
    OptionSpec("usage", OptionType.CHOICE, "ISA15 on what we send.", default="production",
               choices=("production", "test"), example="test"),
    OptionSpec("element separator", OptionType.STRING, "Element separator of what we send.", default="*"),
    OptionSpec("segment terminator", OptionType.STRING, "Segment terminator of what we send.", default="~"),
    OptionSpec("component separator", OptionType.STRING, "Component separator (ISA16) of what we send.",
               default=">"),
    OptionSpec("repetition separator", OptionType.STRING, "Repetition separator (ISA11, 00402 and later).",
               default="^"),
    OptionSpec("acknowledgment due", OptionType.DURATION, "How long the partner has to acknowledge what we "
               "send before it is reported overdue.", default=86400.0, example="4h"),
)


@dataclass(frozen=True)
class PartnerProfile:
    """A partner's settings, resolved."""

    name: str
    their_id: str
    our_id: str
    their_qualifier: str = "ZZ"
    our_qualifier: str = "ZZ"
    their_group_id: str | None = None
    our_group_id: str | None = None
    version: str = "004010"
    acknowledgment: str | None = None
    acknowledge_accepted_sets: bool = True
    ta1: bool = False
    usage: str = "production"
    element_separator: str = "*"
    segment_terminator: str = "~"
    component_separator: str = ">"
    repetition_separator: str = "^"
    acknowledgment_due: float = 86400.0

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> PartnerProfile:
        """Build from resolved option values keyed by OptionSpec.key."""
        known = {spec.key for spec in PARTNER_OPTIONS}
        return cls(name=name, **{k: v for k, v in options.items() if k in known and v is not None})

    @property
    def gs_sender(self) -> str:
        return self.our_group_id or self.our_id

    @property
    def gs_receiver(self) -> str:
        return self.their_group_id or self.their_id

    @property
    def isa_version(self) -> str:
        """ISA12: 00401 for 004010, 00501 for 005010 (the first five digits of GS08)."""
        return self.version[:5]

    @property
    def acknowledgment_set(self) -> str | None:
        """"997", "999" or None (no acknowledgment)."""
        if self.acknowledgment == "none":
            return None
        if self.acknowledgment:
            return self.acknowledgment
        return "999" if self.version.startswith("005") else "997"

    @property
    def usage_indicator(self) -> str:
        return "T" if self.usage == "test" else "P"

    @classmethod
    def inferred(cls, their_qualifier: str, their_id: str, our_qualifier: str, our_id: str,
                 version: str) -> PartnerProfile:
        """A profile for a sender no `partner` block describes: ids swapped from its envelope."""
        return cls(name=their_id.strip(), their_id=their_id.strip(), our_id=our_id.strip(),
                   their_qualifier=their_qualifier.strip(), our_qualifier=our_qualifier.strip(),
                   version=version or "004010")
