"""Lossless, safe serialisation of message bodies for the dead-letter store.

A dead letter keeps the body as it was when the failing step began, so a replay can resume there.
JSON with tags keeps Decimal exact (`{"$decimal": "12.50"}`); nothing is ever unpickled, so a stored
entry cannot run code when it is read back. Values of other types (a parsed X12 tree, say) are not
snapshotted: their replay starts again from the original payload.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_DECIMAL = "$decimal"
_BYTES = "$bytes"


class NotSnapshottable(TypeError):
    """The value holds something other than JSON-like data, Decimal or bytes."""


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, Decimal):
        return {_DECIMAL: str(value)}
    if isinstance(value, bytes):
        return {_BYTES: value.decode("latin-1")}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _encode(v) for k, v in value.items()}
    raise NotSnapshottable(type(value).__name__)


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and _DECIMAL in value:
            return Decimal(value[_DECIMAL])
        if len(value) == 1 and _BYTES in value:
            return value[_BYTES].encode("latin-1")
        return {k: _decode(v) for k, v in value.items()}
    return value


def dump(value: Any) -> bytes | None:
    """The snapshot of `value`, or None when it cannot be snapshotted."""
    try:
        return json.dumps(_encode(value), separators=(",", ":")).encode()
    except NotSnapshottable:
        return None


def load(data: bytes) -> Any:
    """The value a snapshot was taken of."""
    return _decode(json.loads(data))
