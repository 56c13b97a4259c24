"""Logs: one line per event, JSON for machines or one readable line for people, secrets never shown.

- :func:`configure_logging` sets up the root logger once (`crossdock run --log-format json|console`;
  by default JSON unless stderr is a terminal). Every record passes :class:`RedactingFilter`.
- :class:`StageLog` writes one record per stage transition of a message to the `crossdock.events`
  logger: the message text is the event (`received`, `decoded`, `mapped`, `delivered`, `retried`,
  `dead-lettered`, `filtered`, `duplicate`, `acked`, `replied`, `called`...) and the record carries
  `route`, `step`, `correlation_id`, `message_id`, `business_key`, `attempt`, and for failures
  `code` and `error`. Retries are warnings, dead letters errors, the rest info.
- :data:`SECRETS` holds every value resolved from `secret "NAME"` (and from options declared
  secret), registered by :func:`crossdock.engine.services.materialize`. :meth:`SecretRegistry.scrub`
  replaces them with `***` in log records and in what the runtime stores in the dead-letter store
  and the journal. Credentials that no registry can know in advance are masked by their shape: the
  token of `Bearer ...`, `Basic ...` when it decodes to `user:password`, and the password of
  `scheme://user:password@host`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import unquote, urlsplit

import orjson

if TYPE_CHECKING:
    from crossdock.engine.message import Message

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked as text: masking `ab` everywhere would garble every line and still
give the value away by where the masks fall."""

EVENTS_LOGGER = "crossdock.events"
FIELDS = "fields"
"""The LogRecord attribute holding a record's structured fields (`extra={"fields": {...}}`)."""

_BEARER = re.compile(r"(\bBearer\s+)[A-Za-z0-9\-._~+/]+=*")
_BASIC = re.compile(r"(\bBasic\s+)([A-Za-z0-9+/]{4,}={0,2})")
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*:)([^\s/@]+)(@)")
_LIST_SEPARATORS = re.compile(r"[,\n]")


def _url_password(value: str) -> set[str]:
    """The password of `value` when it is a URL with one, as written and percent-decoded."""
    try:
        password = urlsplit(value.strip()).password
    except ValueError:
        return set()
    return {password, unquote(password)} if password else set()


def _basic(match: re.Match[str]) -> str:
    try:
        decoded = base64.b64decode(match[2], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return match[0]
    return match[1] + MASK if ":" in decoded else match[0]


class SecretRegistry:
    """Secret values to mask wherever they appear; one per process, as the logging setup is."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: Any) -> None:
        """Remember a secret: the value, each part of a list of them (`key-one, key-two`), and the
        password of a URL (`amqp://user:password@host`), as written and percent-decoded."""
        if isinstance(value, str):
            self._remember({value, *(part.strip() for part in _LIST_SEPARATORS.split(value)),
                            *_url_password(value)})

    def add_url_password(self, value: Any) -> None:
        """Remember only the password of a URL (a value read from the environment may hold one)."""
        if isinstance(value, str) and "@" in value:
            self._remember(_url_password(value))

    def _remember(self, found: set[str]) -> None:
        with self._lock:
            new = {v for v in found if len(v) >= MIN_SECRET_LENGTH} - self._values
            if not new:
                return
            self._values |= new
            # longest first, so a secret that contains another is masked whole
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def redact(self, text: str) -> str:
        """`text` with every secret, bearer token, basic credential and URL password masked."""
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        if "Bearer" in text:
            text = _BEARER.sub(r"\1" + MASK, text)
        if "Basic" in text:
            text = _BASIC.sub(_basic, text)
        if "://" in text:
            text = _URL_PASSWORD.sub(r"\1" + MASK + r"\3", text)
        return text

    def scrub(self, value: Any) -> Any:
        """A copy of `value` with :meth:`redact` applied to every string inside (dicts, lists, tuples)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {key: self.redact(item) if type(item) is str else self.scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.scrub(item) for item in value)
        return value


SECRETS = SecretRegistry()
"""The process's secrets; :func:`crossdock.engine.services.resolve_value` adds each one it reads."""


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, arguments, fields and traceback (put it on handlers)."""

    def __init__(self, secrets: SecretRegistry = SECRETS) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit: the handler reports the record as broken
            return True
        record.msg = self.secrets.redact(message)
        record.args = None
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            setattr(record, FIELDS, self.secrets.scrub(fields))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.secrets.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.secrets.redact(record.stack_info)
        return True


_second: tuple[int, str] = (-1, "")


def _timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC with milliseconds; the part up to the second is made once per second."""
    global _second
    whole = int(record.created)
    if _second[0] != whole:
        _second = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S."))
    return f"{_second[1]}{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time` (UTC), `level`, `logger`, `message`, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": _timestamp(record), "level": record.levelname.lower(),
                                 "logger": record.name, "message": record.getMessage()}
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            entry.update((key, value) for key, value in fields.items() if key not in entry)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        try:
            return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:  # what orjson refuses (an integer beyond 64 bits) the standard library writes
            return json.dumps(entry, ensure_ascii=False, default=str)


_BARE = re.compile(r"[^\s\"=]+")


def _console_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if _BARE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """One readable line: local time, level, logger, message, then `name=value` fields (None left out)."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%H:%M:%S") + f".{int(record.msecs):03d}"
        line = f"{moment} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            shown = " ".join(f"{key}={_console_value(value)}" for key, value in fields.items()
                             if value is not None and key != "event")
            if shown:
                line += " " + shown
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


LOG_FORMATS = ("json", "console")


def default_format(stream: TextIO) -> str:
    """`console` for a terminal, `json` for anything else (a file, a pipe, a log collector)."""
    try:
        return "console" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
"""The levels `crossdock run --log-level` takes."""


def configure_logging(fmt: str | None = None, *, level: int = logging.INFO, stream: TextIO | None = None,
                      secrets: SecretRegistry = SECRETS) -> logging.Handler:
    """Send every log record to `stream` (default stderr) in `fmt`, secrets masked; returns the handler.

    Replaces the root logger's handlers, so calling it again reconfigures rather than duplicates.
    """
    stream = stream or sys.stderr
    chosen = fmt or default_format(stream)
    if chosen not in LOG_FORMATS:
        raise ValueError(f"unknown log format {chosen!r}; use one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if chosen == "json" else ConsoleFormatter())
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


# Stage events that are not plain progress; every other event is logged at INFO.
EVENT_LEVELS: dict[str, int] = {
    "retried": logging.WARNING,
    "dead-lettered": logging.ERROR,
    "dead-letter-copy-failed": logging.ERROR,
}
# Detail keys that hold the number of the attempt an event is about.
_ATTEMPT_KEYS = ("attempt", "attempts")


class StageLog:
    """Logs the stage transitions of messages (see the module docstring for the fields)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(EVENTS_LOGGER)

    def event(self, route: str, event: str, step: str | None, message: Message, detail: Mapping[str, Any]) -> None:
        """Log one transition of `message` (nothing is built when the level is off)."""
        level = EVENT_LEVELS.get(event, logging.INFO)
        if not self.logger.isEnabledFor(level):
            return
        attempt = next((detail[key] for key in _ATTEMPT_KEYS if key in detail), message.attempt)
        fields: dict[str, Any] = {"event": event, "route": route, "step": step,
                                  "correlation_id": message.correlation_id, "message_id": message.message_id,
                                  "business_key": message.business_key, "attempt": attempt}
        fields.update(_extra(detail, fields))
        # made and handled directly: where in crossdock the call was made says nothing here, and
        # finding it (a stack walk per record) would be most of the cost
        record = self.logger.makeRecord(self.logger.name, level, "", 0, event, (), None, extra={FIELDS: fields})
        self.logger.handle(record)


def _extra(detail: Mapping[str, Any], taken: Iterable[str]) -> Iterable[tuple[str, Any]]:
    """The detail's own fields (`code`, `error`, `wait`, `outcome`...), without repeating the standard ones."""
    skip = {*taken, *_ATTEMPT_KEYS}
    return ((key, value) for key, value in detail.items() if key not in skip)
