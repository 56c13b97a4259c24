"""The per-message parts of a sink's options: templates, expressions and headers, compiled once.

The runtime renders them for each message into `message.meta` (a file name, a request path, the
headers), which is where connectors read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crossdock.dsl.diagnostics import DiagnosticBag
from crossdock.dsl.options import Deferred, OptionType
from crossdock.engine.clock import Clock
from crossdock.engine.mapping.expressions import CompileEnv, Getter, compile_expr
from crossdock.engine.message import Message
from crossdock.engine.plan import EndpointPlan
from crossdock.engine.services import resolve_value
from crossdock.engine.templates import compile_template, is_template
from crossdock.formats.base import format_spec


@dataclass
class PerMessageOptions:
    """Sink options rendered for each message: templates and expressions, by option key."""

    templates: dict[str, Any] = field(default_factory=dict)
    expressions: dict[str, Getter] = field(default_factory=dict)
    headers: list[tuple[str, Any]] = field(default_factory=list)


def per_message_options(endpoint: EndpointPlan, env: Mapping[str, str] | None) -> PerMessageOptions:
    """Templates and expressions of a sink's options, compiled once for all its messages."""
    rendered = PerMessageOptions()
    for key, entry in endpoint.options.values.items():
        for value in entry if isinstance(entry, list) else [entry]:
            kind = value.spec.type
            if kind is OptionType.TEMPLATE and isinstance(value.value, str):
                # plain text too: it must replace what the source put under the same key (a file name)
                rendered.templates[key] = compile_template(value.value) if is_template(value.value) else value.value
            elif kind is OptionType.EXPRESSION:
                rendered.expressions[key] = _compiled(value.value)
            elif kind is OptionType.HEADER and key == "header":  # not `binding header`: that is topology
                name, header = value.value
                fixed = isinstance(header, str | Deferred)
                rendered.headers.append((name, resolve_value(header, env) if fixed else _compiled(header)))
    return rendered


def _compiled(expression: Any) -> Getter:
    # lint compiled the same expression already and reported any problem; here it is known to be sound
    return compile_expr(expression, CompileEnv(DiagnosticBag(), allow_message=True))


def message_view(message: Message) -> dict[str, Any]:
    """What `message.` reads in expressions: ids, route, headers and what the source added."""
    return {
        "correlation_id": message.correlation_id,
        "message_id": message.message_id,
        "route": message.route,
        "headers": message.headers,
        **{k: v for k, v in message.meta.items() if isinstance(v, str | int | float)},
    }


def format_extension(format_name: str) -> str:
    """The file extension of a format (`.json`, `.x12`), for default file names."""
    extensions = format_spec(format_name).extensions
    return extensions[0] if extensions else ""


def template_context(message: Message, clock: Clock, extension: str) -> dict[str, Any]:
    """What a sink's templates see: the body's fields, `body`, `message`, ids, `now`, `extension`."""
    body = message.body
    context: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
    context.update({
        "body": body,
        "message": message_view(message),
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "now": datetime.fromtimestamp(clock.now(), UTC).strftime("%Y%m%dT%H%M%SZ"),
        "extension": extension,
    })
    return context
