"""The settings of one `from http` endpoint, checked once when its route starts (HTP001 when they do not fit)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossdock.connectors.base import ConnectorContext
from crossdock.connectors.http import INTAKE, METHODS, OPTIONS, REQUEST_REPLY
from crossdock.connectors.http.auth import Authenticator, parse_keys
from crossdock.connectors.http.inbox import DEFAULT_INBOX_NAME
from crossdock.engine.errors import PermanentError

# Paths the server answers itself; a route cannot take them.
RESERVED_PATHS = frozenset({"/health", "/ready", "/openapi.json"})
# Methods whose requests carry no body: the route gets their path and query parameters as JSON instead.
BODILESS = frozenset({"GET", "DELETE"})

_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%\-]*|\{[A-Za-z_][A-Za-z0-9_]*\}")
_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LISTEN = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.\-]*)):(?P<port>\d{1,5})")


class HttpSettingError(PermanentError):
    """An http source's options do not describe an endpoint crossdock can serve."""

    code = "HTP001"


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """Everything an endpoint needs, with defaults applied."""

    listen: str
    host: str
    port: int
    method: str
    path: str
    mode: str
    route: str
    auth: Authenticator
    max_body: int
    rate_limit: int | None
    rate_window: float
    idempotency_window: float
    answer_timeout: float
    body_timeout: float
    inbox: Path
    check_every: float

    @property
    def endpoint(self) -> str:
        """`POST /v1/orders`: how rows, logs and idempotency keys name the endpoint."""
        return f"{self.method} {self.path}"

    @property
    def intake(self) -> bool:
        return self.mode == INTAKE

    @property
    def takes_body(self) -> bool:
        return self.method not in BODILESS

    @property
    def parameters(self) -> list[str]:
        """The names of the path's `{name}` segments, in order."""
        return _PARAMETER.findall(self.path)


def parse_listen(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` (every interface) as (host, port)."""
    match = _LISTEN.fullmatch(text.strip())
    if match is None or not 0 <= int(match["port"]) <= 65535:
        raise HttpSettingError(f"'{text}' is not host:port (for example 127.0.0.1:8080 or [::1]:8080)")
    host = match["v6"] or match["host"] or "0.0.0.0"
    return host, int(match["port"])


def _default(key: str) -> Any:
    return next(spec.default for spec in OPTIONS if spec.key == key)


def _option(options: Mapping[str, Any], key: str) -> Any:
    value = options.get(key)
    return _default(key) if value is None else value


def check_path(path: str) -> str:
    """`path` when the server can serve it; HTP001 otherwise."""
    if not path.startswith("/") or any(not _SEGMENT.fullmatch(part) for part in path[1:].split("/")):
        raise HttpSettingError(f"'{path}' is not a path this connector serves: it must start with / and use "
                               "{name} for parameters (letters, digits and _), without ? or #")
    if path in RESERVED_PATHS:
        raise HttpSettingError(f"'{path}' is answered by the server itself; choose another path")
    names = _PARAMETER.findall(path)
    if len(names) != len(set(names)):
        raise HttpSettingError(f"'{path}' uses a parameter name twice")
    return path


def settings_from(options: Mapping[str, Any], context: ConnectorContext) -> EndpointSettings:
    """Check the resolved options of an http source and fill in the defaults."""
    chosen = [(name, options[name]) for name in METHODS if options.get(name) is not None]
    if len(chosen) != 1:
        named = ", ".join(name for name, _ in chosen) or "none"
        raise HttpSettingError(f"an http source serves one method: write one of {', '.join(METHODS)} with its "
                               f"path (found: {named})")
    name, path = chosen[0]
    method = name.upper()
    mode = options.get("mode") or (REQUEST_REPLY if method == "GET" else INTAKE)
    if method == "GET" and mode == INTAKE:
        raise HttpSettingError("GET requests are lookups: they cannot be intake; use post or put")
    try:
        host, port = parse_listen(str(options.get("listen") or ""))
    except HttpSettingError as error:
        raise HttpSettingError(f"listen {error.message}") from None
    rate_limit = options.get("rate_limit")
    if rate_limit is not None and int(rate_limit) < 1:
        raise HttpSettingError("'rate limit' must be at least 1")
    max_body = int(_option(options, "max_body"))
    if max_body < 1:
        raise HttpSettingError("'max body' must be at least 1 byte")
    secret = options.get("hmac_key")
    auth = Authenticator(
        key_header=str(_option(options, "api_key_header")),
        keys=parse_keys(options.get("api_keys")),
        hmac_secret=str(secret).encode() if secret else None,
        signature_header=str(_option(options, "signature_header")),
        timestamp_header=str(_option(options, "timestamp_header")),
        window=float(_option(options, "signature_window")),
    )
    inbox = options.get("inbox")
    return EndpointSettings(
        listen=f"{host}:{port}" if ":" not in host else f"[{host}]:{port}",
        host=host,
        port=port,
        method=method,
        path=check_path(str(path)),
        mode=mode,
        route=context.owner.split(": from ", 1)[0],
        auth=auth,
        max_body=max_body,
        rate_limit=int(rate_limit) if rate_limit is not None else None,
        rate_window=float(_option(options, "rate_limit_window")),
        idempotency_window=float(_option(options, "idempotency_window")),
        answer_timeout=float(_option(options, "answer_timeout")),
        body_timeout=float(_option(options, "body_timeout")),
        inbox=context.resolve_path(str(inbox)) if inbox else context.data_dir / DEFAULT_INBOX_NAME,
        check_every=float(_option(options, "check_every")),
    )
