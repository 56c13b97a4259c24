"""Refused requests: a status, a stable code and a message, answered as one JSON shape everywhere.

Every answer that is not a success has the body `{"error": CODE, "message": ..., "correlation_id": ...}`
and the `X-Correlation-ID` header, whether the route, the protocol layer or the router refused it,
so callers handle one shape and operators find the request in the logs by its correlation id.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from crossdock.engine.message import CORRELATION_HEADER

log = logging.getLogger("crossdock.http")

JSON = "application/json"

# Correlation ids travel into logs, headers and file names: a caller's own id is kept only when it is
# short and plain, otherwise the request gets a fresh one.
_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


class HttpProblem(Exception):
    """A request refused with an HTTP status; raised anywhere in the handling, answered once at the top."""

    def __init__(self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None,
                 extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def response(self, correlation_id: str) -> Response:
        """The JSON answer for this problem."""
        return problem_response(self.status, self.code, self.message, correlation_id, self.headers, self.extra)


def problem_response(status: int, code: str, message: str, correlation_id: str,
                     headers: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None) -> Response:
    """`{"error": code, "message": ..., "correlation_id": ...}` with the correlation header."""
    body = {"error": code, "message": message, "correlation_id": correlation_id, **(extra or {})}
    return json_response(body, status, {**(headers or {}), CORRELATION_HEADER: correlation_id})


def json_response(body: Any, status: int, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response serialized with orjson (several times faster than the stdlib on this hot path)."""
    return Response(orjson.dumps(body), status_code=status, headers=dict(headers or {}), media_type=JSON)


def correlation_id_of(headers: Mapping[str, str]) -> str:
    """The caller's `X-Correlation-ID` when it is usable, else a fresh one."""
    given = headers.get(CORRELATION_HEADER.lower())
    if given and _CORRELATION_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def error_body(code: str, message: str, correlation_id: str) -> bytes:
    """The error body as bytes, for the protocol layer that writes raw HTTP."""
    return orjson.dumps({"error": code, "message": message, "correlation_id": correlation_id})
