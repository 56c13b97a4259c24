"""The X12 codec seen through the format interface of :mod:`crossdock.formats.base`.

This is the module the format registry names for ``x12`` (``"x12": "crossdock.formats.x12.codec"``).

``decode`` reads a payload into a :class:`~crossdock.formats.x12.tree.Document` (issues included,
never raised: acknowledgments need them); ``encode`` writes a Document, an Interchange or a list of
interchanges back to bytes.

Options:

- ``mode`` (strict or lenient, default strict): how forgiving reading is
  (see :class:`~crossdock.formats.x12.issues.Mode`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crossdock.dsl.options import OptionSpec, OptionType, Role
from crossdock.formats.base import FormatSpec
from crossdock.formats.x12.generator import encode as _encode
from crossdock.formats.x12.issues import Mode
from crossdock.formats.x12.reader import read
from crossdock.formats.x12.tree import Document

SPEC = FormatSpec(
    name="x12",
    description="ANSI X12 EDI interchanges (004010 and 005010 distribution sets), read into loop trees.",
    content_type="application/edi-x12",
    options=(
        OptionSpec(
            "mode",
            OptionType.CHOICE,
            "strict: every defect is an error; lenient: defects common in real files are warnings.",
            default="strict",
            example="lenient",
            choices=("strict", "lenient"),
            roles=frozenset({Role.SOURCE}),
        ),
        OptionSpec(
            "partner",
            OptionType.STRING,
            "The trading partner (a `partner` block) an interchange is addressed to: its ids, version, "
            "delimiters; control numbers come from its durable counter.",
            example='"acme"',
            roles=frozenset({Role.SINK}),
        ),
    ),
    extensions=(".x12", ".edi", ".850", ".856", ".810"),
    arguments=(("set", "the transaction set expected, e.g. 850"),
               ("version", "the version its paths are checked against, e.g. 005010 (default 004010)")),
)


def decode(data: bytes, options: Mapping[str, Any] | None = None) -> Document:
    """`data` read into a Document; raises X12Error only for bytes that are not X12."""
    return read(data, mode=Mode((options or {}).get("mode", "strict")))


def encode(value: Any, options: Mapping[str, Any] | None = None) -> bytes:
    """A Document, Interchange or list of interchanges written as X12."""
    return _encode(value)
