"""Reading the console's query and form parameters: anything malformed is a :class:`ConsoleError` (400), never a 500."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from starlette.requests import Request

from crossdock.dsl.diagnostics import did_you_mean

MAX_FORM_BYTES = 256 * 1024  # a purge of a few thousand selected ids fits with room to spare
MAX_PAGE = 10_000
MAX_QUERY_CHARS = 200
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


class ConsoleError(Exception):
    """An answer other than the page asked for: a status, a title and a message for the error page."""

    def __init__(self, status: int, title: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ConsoleError:
    """A 400 naming what was wrong with the request."""
    return ConsoleError(400, "Bad request", message)


def text(value: str | None, name: str, *, limit: int = MAX_QUERY_CHARS) -> str | None:
    """A trimmed free-text parameter, None when empty; 400 when longer than `limit`."""
    if value is None or not value.strip():
        return None
    if len(value) > limit:
        raise bad_request(f"'{name}' is longer than {limit} characters")
    return value.strip()


def route_name(value: str | None, known: Collection[str]) -> str | None:
    """A route filter: None for all routes; 400 for a route the engine does not run."""
    name = text(value, "route")
    if name is None or name in known:
        return name
    hint = did_you_mean(name, known)
    raise bad_request(f"unknown route '{name}'" + (f"; {hint}" if hint else ""))


def error_code(value: str | None) -> str | None:
    """An error-code filter (`ERP422`, `D101`...): letters, digits, `_.-`; 400 otherwise."""
    code = text(value, "code")
    if code is not None and not _CODE.fullmatch(code):
        raise bad_request(f"'{code}' is not an error code (letters and digits, such as D101)")
    return code


def moment(value: str | None, name: str, *, end_of_day: bool = False) -> float | None:
    """Epoch seconds from an ISO date or date and time (UTC unless it says otherwise); None when empty.

    A date alone means the start of that day, or with `end_of_day` the start of the next one, so a
    range `since 2026-01-01 until 2026-01-01` covers that whole day.
    """
    raw = text(value, name)
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        if end_of_day and _DATE_ONLY.fullmatch(raw):
            parsed += timedelta(days=1)
        return parsed.timestamp()
    except (ValueError, OverflowError):
        raise bad_request(f"'{name}' takes a date (2026-01-31) or a date and time (2026-01-31T08:00), "
                          f"not '{raw}'") from None


def page_number(value: str | None) -> int:
    """A page number from 1 to :data:`MAX_PAGE` (1 when absent)."""
    raw = text(value, "page")
    if raw is None:
        return 1
    if not raw.isdecimal() or not 1 <= int(raw) <= MAX_PAGE:
        raise bad_request(f"'page' takes a whole number from 1 to {MAX_PAGE}, not '{raw}'")
    return int(raw)


async def form(request: Request) -> dict[str, list[str]]:
    """The fields of a urlencoded form body (every value of repeated fields), bounded in size."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise bad_request("console actions take an HTML form (application/x-www-form-urlencoded)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ConsoleError(413, "Form too large", f"the form is larger than {MAX_FORM_BYTES // 1024} KiB; "
                                                      "select fewer entries")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise bad_request("the form is not valid urlencoded UTF-8") from None
    fields: dict[str, list[str]] = {}
    for key, value in pairs:
        fields.setdefault(key, []).append(value)
    return fields
