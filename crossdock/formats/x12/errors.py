"""The X12 codec's exception types, in the shape of :class:`~crossdock.engine.errors.DecodeError`.

:class:`X12Error` is the only exception the codec raises for bad input: bytes that cannot be
tokenized (not X12, a truncated ISA, unusable delimiters, a runaway segment). It carries a stable
`X12-T...` code and a :class:`~crossdock.engine.errors.Position`. Defects found in input that could be
read are :class:`~crossdock.formats.x12.issues.Issue` values instead; :class:`X12ValidationError`
wraps them for callers that want reading to fail on the first error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from crossdock.engine.errors import DecodeError, PermanentError, Position

if TYPE_CHECKING:
    from crossdock.formats.x12.issues import Issue


class X12Error(DecodeError):
    """The input cannot be read as X12; `code` says why, `position` says where."""

    code = "X12-T000"

    def __init__(self, code: str, message: str, position: Position) -> None:
        super().__init__(message, position, code=code)


class X12ValidationError(X12Error):
    """The input was read but holds errors; `issues` lists them, the first gives the position."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        first = self.issues[0]
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        super().__init__(first.code, first.message + more, first.position)


class X12EncodeError(PermanentError):
    """A model cannot be written as X12: a value holds a delimiter, or a header is malformed."""

    code = "X12-G001"
