"""JSON: web stores, marketplaces, REST APIs and canonical documents.

Features:

- Exact numbers. Decoding uses the standard library's :func:`json.loads` with ``parse_float=Decimal``,
  so "12.50" arrives as ``Decimal('12.50')``, never as a float; whole numbers stay ``int``. (orjson
  is faster but has no ``parse_float`` hook: it always makes floats, and 0.1 + 0.2 is not 0.3.)
- Strict input. NaN, Infinity and -Infinity (which Python's json accepts) are rejected, and so are
  numbers whose exponent would make them absurdly long once written out. A UTF-8 byte order mark at
  the start is skipped, since Windows tools write one; any other non-UTF-8 byte is an error.
- Precise errors. A :class:`~crossdock.engine.errors.DecodeError` carries a
  :class:`~crossdock.engine.errors.Position`: ``offset`` in bytes from the start of the payload,
  ``line`` and ``column`` (1-based, counting characters) of the offending spot.
- Fast output. Encoding uses orjson. Decimal is written as a JSON *string* of its exact digits,
  never an exponent ("12.50", "100"), so no consumer parses money into a float; date and datetime
  are ISO 8601 text, enums their values. Whole numbers beyond 64 bits cannot be written (orjson
  refuses them); identifiers that long travel as text.

Options:

- ``pretty`` (yes/no, default no): indent by two spaces and end with a newline. Without it the output
  is compact and has no trailing newline.

Error codes: D101 not UTF-8, D102 empty payload, D103 invalid JSON, D104 a number that is not
allowed (NaN, Infinity, too large an exponent, too many digits), D110 a value that cannot be
written as JSON.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

from crossdock.dsl.options import OptionSpec, OptionType, Role
from crossdock.engine.errors import DecodeError, PermanentError, Position
from crossdock.formats.base import FormatSpec

SPEC = FormatSpec(
    name="json",
    description="JSON documents with exact decimal numbers.",
    content_type="application/json",
    options=(
        OptionSpec(
            "pretty",
            OptionType.BOOLEAN,
            "Indent the output by two spaces and end it with a newline, for people reading it.",
            default=False,
            example="yes",
            roles=frozenset({Role.SINK}),
        ),
    ),
    extensions=(".json",),
)

# A number whose decimal exponent is beyond this would be written out with more than this many
# digits (Decimal('1E+999999999') is a gigabyte of zeros); no price or quantity comes near it.
MAX_EXPONENT = 1000

_BOM = b"\xef\xbb\xbf"

# Finds a token in text whose prefix is valid JSON: strings are matched whole so that nothing
# inside them is taken for a number; group 1 is a number or a non-finite constant.
_TOKENS = re.compile(
    r'"(?:[^"\\]|\\.)*"|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|-?Infinity|NaN)'
)


class _Rejected(Exception):
    """Raised from a json.loads hook: `token` is the text of the value, `reason` why it is refused."""

    def __init__(self, token: str, reason: str) -> None:
        super().__init__(reason)
        self.token = token
        self.reason = reason


def _parse_float(token: str) -> Decimal:
    value = Decimal(token)
    if abs(value.adjusted()) > MAX_EXPONENT:
        raise _Rejected(token, f"the number {token} is out of range (exponent beyond ±{MAX_EXPONENT})")
    return value


def _reject_constant(token: str) -> Any:
    raise _Rejected(token, f"{token} is not a JSON number; numbers must be finite")


# One decoder for every payload (json.loads with hooks builds a new one a call), and whole numbers
# read by the C scanner's own int() rather than a Python hook per number: 2-4 µs of a web order.
_DECODER = json.JSONDecoder(parse_float=_parse_float, parse_constant=_reject_constant)


def _position(text: str, index: int, skipped: int) -> Position:
    """The position of character `index` of `text`, which started `skipped` bytes into the payload."""
    line_start = text.rfind("\n", 0, index) + 1
    return Position(
        offset=skipped + len(text[:index].encode("utf-8")),
        line=text.count("\n", 0, index) + 1,
        column=index - line_start + 1,
    )


def _locate(text: str, token: str) -> int:
    """Where the first number or constant spelled `token` stands outside strings.

    json.loads reads in document order and a hook raises at the first value it refuses, so the first
    such token is the refused one.
    """
    for match in _TOKENS.finditer(text):
        if match.group(1) == token:
            return match.start(1)
    raise AssertionError(f"{token!r} was parsed but cannot be found")  # json.loads saw it, so it is there


def decode(data: bytes, options: Mapping[str, Any]) -> Any:
    """The value of the JSON document in `data`: dicts, lists, str, int, Decimal, bool and None."""
    skipped = len(_BOM) if data.startswith(_BOM) else 0
    if not data[skipped:].strip():
        raise DecodeError("the payload is empty: expected a JSON value", Position(offset=0, line=1, column=1),
                          code="D102")
    try:
        text = data[skipped:].decode("utf-8")
    except UnicodeDecodeError as error:
        valid = data[skipped : skipped + error.start].decode("utf-8")
        bad_byte = data[skipped + error.start]
        position = _position(valid, len(valid), skipped)
        raise DecodeError(f"the payload is not UTF-8: byte 0x{bad_byte:02X} cannot be read", position,
                          code="D101") from None
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        position = _position(text, error.pos, skipped)
        raise DecodeError(f"invalid JSON: {error.msg}", position, code="D103") from None
    except _Rejected as rejected:
        position = _position(text, _locate(text, rejected.token), skipped)
        raise DecodeError(f"invalid JSON: {rejected.reason}", position, code="D104") from None
    except ValueError:  # int() refused a whole number: more digits than sys.get_int_max_str_digits()
        start, token = _too_long_whole_number(text)
        raise DecodeError(f"invalid JSON: a whole number with {len(token.lstrip('-'))} digits is too long",
                          _position(text, start, skipped), code="D104") from None


def _too_long_whole_number(text: str) -> tuple[int, str]:
    """Where the first whole number longer than Python reads stands in `text`, and its text."""
    limit = sys.get_int_max_str_digits()
    for match in _TOKENS.finditer(text):
        token = match.group(1)
        if token and token.lstrip("-").isdigit() and len(token.lstrip("-")) > limit:
            return match.start(1), token
    raise AssertionError("int() refused a number that cannot be found")  # the decoder saw it, so it is there


def _default(value: Any) -> Any:
    # orjson calls this for every type it does not write natively; only Decimal is welcome here.
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} is not a finite number")
        if abs(value.adjusted()) > MAX_EXPONENT:
            raise TypeError(f"a number with exponent {value.adjusted()} is out of range")
        return format(value, "f")
    raise TypeError(f"a value of type {type(value).__name__} has no JSON form")


def encode(value: Any, options: Mapping[str, Any]) -> bytes:
    """`value` as JSON: compact, or indented with a final newline when `pretty`."""
    flags = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE if options.get("pretty") else 0
    try:
        return orjson.dumps(value, default=_default, option=flags)
    except orjson.JSONEncodeError as error:
        # orjson keeps the reason given by `_default` as the cause; its own message is generic.
        reason = error.__cause__ or error
        raise PermanentError(f"cannot write the body as JSON: {reason}", code="D110") from None


__all__ = ["MAX_EXPONENT", "SPEC", "decode", "encode"]
