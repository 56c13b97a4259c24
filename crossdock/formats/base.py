"""The small interface every format implements, its declared option schema, and the registry.

A format module (one per codec: json, x12, xml) opens with a docstring of its features and options
and exposes:

- `SPEC`: a :class:`FormatSpec` (content type, file extensions, options) read by lint, docs and runtime;
- `decode(data, options) -> value`: bytes from a source to the value a route works on;
- `encode(value, options) -> bytes`: a value to the bytes a sink sends.

Formats are pure functions of their input: no I/O, no state between messages. A payload that is not
valid in the format raises :class:`~crossdock.engine.errors.DecodeError` with the position of the
problem; library exceptions never leak. Transports and formats are separate: X12 travels over SFTP,
AS2 or a queue, JSON over REST or AMQP.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from crossdock.dsl.diagnostics import did_you_mean
from crossdock.dsl.options import OptionSpec


@dataclass(frozen=True, slots=True)
class FormatSpec:
    """A format's declaration: what it is, how it is labelled, which options it takes."""

    name: str
    description: str
    content_type: str
    options: tuple[OptionSpec, ...] = ()
    extensions: tuple[str, ...] = ()
    """File extensions with the dot (".json"), for guessing a file's format and naming output files."""
    arguments: tuple[tuple[str, str], ...] = ()
    """Values written right after the format's name (`read x12 850 004010`): (name, description) pairs,
    in order; they reach decode and the map's path compiler under those names."""


class Format(Protocol):
    """What a format module exposes (see the module docstring)."""

    SPEC: FormatSpec

    def decode(self, data: bytes, options: Mapping[str, Any]) -> Any:
        """The value `data` holds; raises DecodeError with a position."""
        ...

    def encode(self, value: Any, options: Mapping[str, Any]) -> bytes:
        """`value` written in this format."""
        ...


# Names to modules, imported on first use so that lint never pays for a codec library it does not need.
_REGISTRY: dict[str, str] = {
    "json": "crossdock.formats.json",
    "x12": "crossdock.formats.x12.codec",
    "xml": "crossdock.formats.xml",
}
_LOADED: dict[str, ModuleType] = {}


class UnknownFormat(LookupError):
    """No format of that name is registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hint = did_you_mean(name, _REGISTRY)
        super().__init__(f"unknown format '{name}'" + (f"; {self.hint}" if self.hint else ""))


def format_names() -> list[str]:
    """Every registered format name."""
    return sorted(_REGISTRY)


def load_format(name: str) -> Format:
    """The module implementing `name`; raises :class:`UnknownFormat`."""
    module = _LOADED.get(name)
    if module is None:  # import_module costs microseconds even when imported; steps ask per message
        try:
            module_name = _REGISTRY[name]
        except KeyError:
            raise UnknownFormat(name) from None
        module = _LOADED[name] = importlib.import_module(module_name)
    return module  # type: ignore[return-value]


def format_spec(name: str) -> FormatSpec:
    """The declared spec of `name`."""
    return load_format(name).SPEC
