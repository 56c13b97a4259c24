"""Renders the option reference of docs/language.md from the declarations lint and the runtime read.

Each connector and format declares its options once, as :class:`~crossdock.dsl.options.OptionSpec`
values in its `SPEC`; lint checks route files against them and the runtime reads them, so a reference
rendered from them cannot say something lint does not accept. `python -m crossdock.dsl.docs`
rewrites the generated part of docs/language.md (between the two marker comments) in place, and a test
checks that the file is up to date.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from crossdock.connectors.base import connector_kinds, connector_spec
from crossdock.dsl.options import OptionSpec, OptionType, Role, Scope
from crossdock.engine.compiler import FORMAT_OPTION
from crossdock.formats.base import format_names, format_spec

DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "language.md"
BEGIN = "<!-- BEGIN GENERATED: options (python -m crossdock.dsl.docs); do not edit by hand -->"
END = "<!-- END GENERATED: options -->"

_TYPE_WORDS = {
    OptionType.STRING: 'text in quotes',
    OptionType.TEMPLATE: 'template in quotes',
    OptionType.DURATION: "duration",
    OptionType.INTEGER: "whole number",
    OptionType.DECIMAL: "number",
    OptionType.BOOLEAN: "yes / no",
    OptionType.EXPRESSION: "`= expression`",
    OptionType.HEADER: '`"Name" "value"` or `"Name" = expression`',
    OptionType.WORDS: "words",
    OptionType.SIZE: "size (`10 MB`, `512 KiB`, bytes)",
}
_CONNECTION_WORDS = {
    "required": 'needs a connection: `{kind} "name"`',
    "optional": 'with a connection (`{kind} "name"`) or with its options on the step',
    "none": "takes its options on the step; there is no connection block",
}


def render_connector_docs() -> str:
    """One section per registered connector: what it is, how it is used, and a table of its options."""
    parts: list[str] = []
    for kind in connector_kinds():
        spec = connector_spec(kind)
        roles = " and ".join(f"a {role.value} (`{'from' if role is Role.SOURCE else 'to'} {kind}`)"
                             for role in (Role.SOURCE, Role.SINK) if role in spec.roles)
        parts += [
            f"### `{kind}` connector",
            "",
            spec.description,
            "",
            f"Used as {roles}; {_CONNECTION_WORDS[spec.connection].format(kind=kind)}. "
            f"Example line: `{_example_line(spec.options)}`.",
            "",
            *_option_table(spec.options, _CONNECTOR_ROLES),
            "",
        ]
    return "\n".join(parts)


def render_format_docs() -> str:
    """One section per registered format (`read NAME`, `format NAME` on a sink) and its options."""
    parts: list[str] = []
    for name in format_names():
        spec = format_spec(name)
        extensions = ", ".join(f"`{e}`" for e in spec.extensions)
        parts += [
            f"### `{name}` format",
            "",
            spec.description,
            "",
            f"Content type `{spec.content_type}`" + (f"; files {extensions}." if extensions else "."),
            "",
        ]
        if spec.options:
            parts += [*_option_table(spec.options, _FORMAT_ROLES), ""]
        else:
            parts += ["No options.", ""]
    return "\n".join(parts)


def render_reference() -> str:
    """The generated part of docs/language.md, markers included."""
    return "\n".join([
        BEGIN,
        "",
        "The tables below are generated from the option declarations that `crossdock lint` checks",
        "against. *Used on* says whether an option applies to a source (`from`), a sink (`to`, and",
        "`dead letter to`) or, for a format, a `read` step; *where* says whether it may be written in",
        "the connection block, on the step, or in either (a step's option wins over its connection's).",
        "",
        "## Connectors",
        "",
        render_connector_docs(),
        "## Formats",
        "",
        "A format decodes with `read NAME` and encodes on a sink: every `to` step takes",
        f"`format NAME` (default `{FORMAT_OPTION.default}`) and the sink options of that format.",
        "",
        render_format_docs(),
        END,
    ])


def _example_line(options: tuple[OptionSpec, ...]) -> str:
    first = next((o for o in options if o.required), options[0] if options else None)
    if first is None:
        return ""
    return f"{first.name} {first.example}" if first.example else first.name


_CONNECTOR_ROLES = {Role.SOURCE: "source", Role.SINK: "sink"}
_FORMAT_ROLES = {Role.SOURCE: "`read`", Role.SINK: "sink"}


def _option_table(options: tuple[OptionSpec, ...], role_words: dict[Role, str]) -> list[str]:
    rows = [
        "| option | value | used on | where | default | description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for option in options:
        value = _TYPE_WORDS.get(option.type, option.type.value)
        if option.choices:
            value = "one of " + ", ".join(f"`{c}`" for c in option.choices)
        if option.secret:
            value += ', secret: `secret "NAME"` or `env "NAME"`'
        roles = ", ".join(word for role, word in role_words.items() if role in option.roles)
        where = {Scope.CONNECTION: "connection", Scope.STEP: "step", Scope.ANY: "either"}[option.scope]
        default = "**required**" if option.required else _default_text(option)
        example = f" Example: `{option.name} {option.example}`." if option.example else ""
        rows.append(f"| `{option.name}` | {value} | {roles} | {where} | {default} | "
                    f"{_cell(option.description + example)} |")
    return rows


def _default_text(option: OptionSpec) -> str:
    value: Any = option.default
    if value is None:
        return ""
    if option.type is OptionType.DURATION:
        return f"`{duration_text(float(value))}`"
    if option.type is OptionType.BOOLEAN:
        return "`yes`" if value else "`no`"
    if option.type is OptionType.SIZE:
        return f"`{size_text(int(value))}`"
    if isinstance(value, str) and option.type in (OptionType.STRING, OptionType.TEMPLATE):
        return _cell(f'`"{value}"`')
    if isinstance(value, Decimal | int | float):
        return f"`{value}`"
    return _cell(f"`{value}`")


def size_text(size: int) -> str:
    """A size as a route file writes it: the largest IEC unit that divides it (1048576 -> `1 MiB`)."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def duration_text(seconds: float) -> str:
    """A duration as a route file writes it: the largest unit that divides it (`90s` -> `90s`, 3600 -> `1h`)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms" if seconds < 1 else f"{seconds:g}s"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def updated(text: str) -> str:
    """`text` (docs/language.md) with its generated part replaced by the current rendering."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + render_reference() + text[end:]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS_PATH
    target.write_text(updated(target.read_text(encoding="utf-8")), encoding="utf-8")
