"""The error classes every stage and connector raises, classified for the retry policy.

Connectors map their library's exceptions to these at the boundary: transient errors (timeouts, lost
connections, HTTP 408/429/502/503/504) are retried per policy; permanent ones (bad payloads, mapping and
validation failures, other HTTP 4xx) go straight to the dead-letter store. Each error has a stable code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from crossdock.dsl.diagnostics import Span


class TransientKind(StrEnum):
    """Why a transient error happened; `retry on ...` in a policy selects among these."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    OTHER = "other"


class CrossdockError(Exception):
    """Base of every classified error: a stable code and a plain-words message."""

    code = "E000"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description for the dead-letter store and logs."""
        return {"type": type(self).__name__, "code": self.code, "message": self.message, **self.details}


class TransientError(CrossdockError):
    """Worth trying again: the same message may succeed later."""

    code = "T000"

    def __init__(
        self,
        message: str,
        *,
        kind: TransientKind = TransientKind.OTHER,
        retry_after: float | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.kind = kind
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["kind"] = self.kind.value
        if self.retry_after is not None:
            data["retry_after"] = self.retry_after
        return data


class PermanentError(CrossdockError):
    """Trying again cannot help: the message goes to the dead-letter store."""

    code = "P000"


@dataclass(frozen=True, slots=True)
class Position:
    """Where in a payload a decode error sits; fields that do not apply stay None."""

    offset: int | None = None
    line: int | None = None
    column: int | None = None
    segment: int | None = None
    path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("offset", self.offset), ("line", self.line), ("column", self.column),
                                  ("segment", self.segment), ("path", self.path)) if v is not None}

    def __str__(self) -> str:
        parts = [f"{k} {v}" for k, v in self.as_dict().items()]
        return ", ".join(parts) if parts else "unknown position"


class DecodeError(PermanentError):
    """The payload is not valid in its format (bad JSON, malformed X12, invalid XML)."""

    code = "D000"

    def __init__(self, message: str, position: Position | None = None, *, code: str | None = None) -> None:
        self.position = position or Position()
        super().__init__(message, code=code, details={"position": self.position.as_dict()})

    def __str__(self) -> str:
        return f"{self.message} ({self.position})"


class MapError(PermanentError):
    """A map could not build its output; carries the map line that failed."""

    code = "M000"

    def __init__(self, message: str, span: Span | None = None, *, code: str | None = None) -> None:
        self.span = span
        details = {"map_line": str(span)} if span is not None else {}
        super().__init__(message, code=code, details=details)

    def __str__(self) -> str:
        return f"{self.span}: {self.message}" if self.span else self.message


@dataclass
class FieldProblem:
    """One validation failure: which field, what is wrong."""

    path: str
    message: str


class ValidationFailed(PermanentError):
    """The body does not satisfy its model or schema."""

    code = "V001"

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message, details={"problems": [{"path": p.path, "message": p.message} for p in self.problems]})


@dataclass
class ErrorChain:
    """An exception and its causes, flattened for storage."""

    errors: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, error: BaseException) -> ErrorChain:
        chain: list[dict[str, Any]] = []
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if isinstance(current, CrossdockError):
                chain.append(current.to_dict())
            else:
                chain.append({"type": type(current).__name__, "code": "X000", "message": str(current)})
            current = current.__cause__ or current.__context__
        return cls(chain)


def is_transient(error: BaseException) -> bool:
    """True when the error is worth retrying."""
    return isinstance(error, TransientError)
