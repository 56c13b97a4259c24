"""Typed option schemas, and the resolution of loose option lines against them.

Connectors, formats and dead-letter targets each declare a tuple of :class:`OptionSpec`. The parser
keeps option lines loose (`words values [= expr]`); this module decides which words name the option
(longest match, so `after success move to` wins over `after`), checks the values against the declared
type and scope, and reports problems as diagnostics. Lint, the docs generator and the runtime all call
:func:`resolve_options`, so they can never disagree about what an option means.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import DiagnosticBag, Span, closest, did_you_mean
from crossdock.dsl.transformer import UNIT_SECONDS, duration_units


class OptionType(StrEnum):
    """What an option's value is."""

    STRING = "string"
    TEMPLATE = "template"  # a string rendered per message with the sandboxed Jinja2 environment
    DURATION = "duration"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"  # `create folders` alone means yes; `yes`/`no` also accepted
    CHOICE = "choice"
    EXPRESSION = "expression"  # `option = expression`
    HEADER = "header"  # `header "Name" = expression` or `header "Name" "value"`
    WORDS = "words"  # one or more bare words, e.g. `auth bearer`
    SIZE = "size"  # bytes: `1048576`, or a number and a unit, `10 MB`, `512 KiB`


# Units of SIZE options, case-insensitive: SI (powers of 1000) and IEC (powers of 1024), as written.
SIZE_UNITS = {"b": 1, "byte": 1, "bytes": 1, "kb": 10**3, "kib": 2**10, "mb": 10**6, "mib": 2**20,
              "gb": 10**9, "gib": 2**30}


class Scope(StrEnum):
    """Where an option may be written: hosts, users and secrets belong in connection blocks."""

    CONNECTION = "connection"
    STEP = "step"
    ANY = "any"


class Role(StrEnum):
    """How a connector is used by a route."""

    SOURCE = "source"
    SINK = "sink"


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One declared option: its name (may be several words), type, default and documentation."""

    name: str
    type: OptionType
    description: str
    default: Any = None
    example: str | None = None
    required: bool = False
    secret: bool = False
    scope: Scope = Scope.ANY
    roles: frozenset[Role] = frozenset({Role.SOURCE, Role.SINK})
    choices: tuple[str, ...] = ()
    repeatable: bool = False

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self.name.split())

    @property
    def key(self) -> str:
        """The name as a Python identifier (`after success move to` -> `after_success_move_to`)."""
        return "_".join(self.words)


@dataclass(frozen=True, slots=True)
class Deferred:
    """A value read from the environment or the secrets folder when the route starts."""

    source: str  # "env" or "secret"
    name: str
    span: Span

    def resolve(self, env: Mapping[str, str] | None = None, secrets_dir: str | None = None) -> str | None:
        """The value now, or None when it is not set."""
        env = os.environ if env is None else env
        if self.source == "secret":
            folder = secrets_dir or env.get("CROSSDOCK_SECRETS_DIR")
            if folder:
                candidate = Path(folder) / self.name
                if candidate.is_file():
                    return candidate.read_text(encoding="utf-8").strip()
        return env.get(self.name)


@dataclass(frozen=True, slots=True)
class OptionValue:
    """A resolved option: its spec, its value (possibly Deferred or an expression) and where it was set."""

    spec: OptionSpec
    value: Any
    span: Span


@dataclass
class ResolvedOptions:
    """Options by key; repeatable ones hold a list of values."""

    values: dict[str, OptionValue | list[OptionValue]] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        found = self.values.get(key)
        if found is None:
            return default
        if isinstance(found, list):
            return [v.value for v in found]
        return found.value

    def span(self, key: str) -> Span | None:
        found = self.values.get(key)
        if isinstance(found, list):
            return found[0].span if found else None
        return found.span if found else None

    def deferred(self) -> list[Deferred]:
        """Every env or secret reference among the values (nested ones included)."""
        out: list[Deferred] = []
        for entry in self.values.values():
            for item in entry if isinstance(entry, list) else [entry]:
                out.extend(_deferred_in(item.value))
        return out

    def merged_over(self, base: ResolvedOptions) -> ResolvedOptions:
        """These options on top of `base` (step options override the connection's)."""
        return ResolvedOptions({**base.values, **self.values})


def _deferred_in(value: Any) -> list[Deferred]:
    if isinstance(value, Deferred):
        return [value]
    if isinstance(value, tuple | list):
        return [d for v in value for d in _deferred_in(v)]
    return []


def token_text(token: ast.OptToken) -> str:
    """A token as the analyst wrote it (for labels and messages)."""
    if isinstance(token, ast.Word):
        return token.text
    if isinstance(token, ast.StringLit):
        return f'"{token.value}"'
    if isinstance(token, ast.NumberLit):
        return str(token.value)
    if isinstance(token, ast.DurationLit):
        return token.text
    if isinstance(token, ast.EnvRef):
        return f'env "{token.name}"'
    return f'secret "{token.name}"'


def match_option(
    tokens: Sequence[ast.OptToken], specs: Iterable[OptionSpec]
) -> tuple[OptionSpec | None, int]:
    """The spec whose name is the longest prefix of the line's leading words, and that prefix's length."""
    words: list[str] = []
    for token in tokens:
        if not isinstance(token, ast.Word):
            break
        words.append(token.text.lower())
    best: OptionSpec | None = None
    best_len = 0
    for spec in specs:
        n = len(spec.words)
        if n > best_len and n <= len(words) and tuple(words[:n]) == spec.words:
            best, best_len = spec, n
    return best, best_len


def resolve_options(
    lines: Sequence[ast.OptionLine],
    specs: Sequence[OptionSpec],
    *,
    scope: Scope,
    role: Role | None,
    owner: str,
    bag: DiagnosticBag,
    step_keywords: Iterable[str] = (),
    check_required: bool = True,
    apply_defaults: bool = True,
    anchor: Span | None = None,
) -> ResolvedOptions:
    """Check option lines against `specs`, reporting problems in `bag`; returns what could be resolved.

    `owner` names the thing the options belong to in messages ("file source", "connection 'erp'").
    `step_keywords` lets an unknown option that is really a misspelled step (`mapp with ...` under a
    source) get "did you mean 'map'?". Pass `apply_defaults=False` when the result is merged with
    other options afterwards (a step over its connection), then call :func:`with_defaults`.
    """
    allowed = [s for s in specs if role is None or role in s.roles]
    result = ResolvedOptions()
    for line in lines:
        spec, used = match_option(line.tokens, allowed)
        first = line.tokens[0] if line.tokens else None
        if spec is None:
            if _unknown_option(line, first, allowed, specs, role, owner, bag, step_keywords):
                break  # the following lines belong to that definition, not to these options
            continue
        if scope is Scope.STEP and spec.scope is Scope.CONNECTION:
            bag.error(
                "OPT003",
                f"'{spec.name}' belongs in a connection block, not in a route",
                line.span,
                "hosts, users and secrets live in `connection` blocks; routes only name the connection",
            )
            continue
        if scope is Scope.CONNECTION and spec.scope is Scope.STEP:
            bag.error("OPT004", f"'{spec.name}' is set per route step, not on the connection", line.span,
                      f"move it under the step that uses {owner}")
            continue
        value = _convert(spec, list(line.tokens[used:]), line, owner, bag)
        if value is _INVALID:
            continue
        entry = OptionValue(spec, value, line.span)
        if spec.repeatable:
            existing = result.values.setdefault(spec.key, [])
            assert isinstance(existing, list)
            existing.append(entry)
        elif spec.key in result.values:
            bag.error("OPT005", f"'{spec.name}' is set twice for {owner}", line.span,
                      f"the first is at line {result.span(spec.key).line}")  # type: ignore[union-attr]
        else:
            result.values[spec.key] = entry
    if check_required:
        where = anchor or (lines[0].span if lines else Span("", 0, 0))
        for spec in allowed:
            if spec.required and spec.key not in result.values:
                bag.error("OPT006", f"{owner} needs '{spec.name}'", where,
                          f"add a line: {spec.name} {spec.example or '...'}")
    if apply_defaults:
        result = with_defaults(result, allowed, anchor)
    return result


def with_defaults(options: ResolvedOptions, specs: Sequence[OptionSpec], anchor: Span | None = None) -> ResolvedOptions:
    """`options` with the default of every spec it does not set (after merging, never before)."""
    values = dict(options.values)
    for spec in specs:
        if spec.key not in values and spec.default is not None:
            values[spec.key] = OptionValue(spec, spec.default, anchor or Span("", 0, 0))
    return ResolvedOptions(values)


# Words that start a definition: as an option line they mean the block above lacks its `end`.
_DEFINITION_WORDS = {"connection", "policy", "route", "table"}


def _unknown_option(
    line: ast.OptionLine,
    first: ast.OptToken | None,
    allowed: Sequence[OptionSpec],
    every: Sequence[OptionSpec],
    role: Role | None,
    owner: str,
    bag: DiagnosticBag,
    step_keywords: Iterable[str],
) -> bool:
    """Report an option line that matches no spec; True when it starts a new definition instead."""
    word = first.text if isinstance(first, ast.Word) else (token_text(first) if first else "")
    span = first.span if first is not None else line.span
    words = " ".join(t.text for t in line.tokens if isinstance(t, ast.Word))
    names = [s.name for s in allowed]
    if isinstance(first, ast.Word):
        other_role = next((s for s in every if s not in allowed and match_option(line.tokens, [s])[0]), None)
        if other_role is not None and role is not None:
            used_by = " or a ".join(r.value for r in (Role.SOURCE, Role.SINK) if r in other_role.roles)
            bag.error("OPT001", f"'{other_role.name}' does not apply to {owner}", span,
                      f"'{other_role.name}' is used only on a {used_by}")
            return False
        if word in _DEFINITION_WORDS:
            bag.error("OPT001", f"unknown option '{word}' for {owner}", span,
                      f"'{word}' starts a new definition: is the `end` of the block above missing?")
            return True
        # A misspelled step under a source or sink reads as an option line: offer the step keyword when
        # it is closer than any option name (`mapp` -> map, but `fodler` -> folder, not for). Step
        # keywords are short, so they need a closer match than option names to be offered at all.
        option = closest(words, names) or closest(word, names)
        keyword = closest(word, step_keywords, cutoff=0.75)
        if keyword is not None and (option is None or keyword[1] > option[1]):
            bag.error("OPT001", f"unknown option '{word}' for {owner}", span,
                      f"did you mean '{keyword[0]}' (a step of the route)?")
            return False
    hint = did_you_mean(words, names) or did_you_mean(word, names)
    if hint is None and names:
        hint = "known options: " + ", ".join(sorted(names))
    bag.error("OPT001", f"unknown option '{words or word}' for {owner}", span, hint)
    return False


class _Invalid:
    pass


_INVALID = _Invalid()
_TRUE = {"yes", "true", "on"}
_FALSE = {"no", "false", "off"}


def _convert(
    spec: OptionSpec, rest: list[ast.OptToken], line: ast.OptionLine, owner: str, bag: DiagnosticBag
) -> Any:
    def bad(message: str, hint: str | None = None, span: Span | None = None) -> _Invalid:
        bag.error("OPT002", f"'{spec.name}' {message}", span or (rest[0].span if rest else line.span), hint)
        return _INVALID

    example = f" (for example: {spec.name} {spec.example})" if spec.example else ""
    if spec.type is OptionType.EXPRESSION:
        if line.expr is None or rest:
            return bad("takes `= expression`", f"write: {spec.name} = {spec.example or '...'}")
        return line.expr
    if line.expr is not None and spec.type is not OptionType.HEADER:
        return bad("does not take `= expression`", span=line.span)
    if spec.type is OptionType.HEADER:
        if not rest or not isinstance(rest[0], ast.StringLit):
            return bad('takes a header name in quotes', f'write: {spec.name} "Name" = expression')
        name = rest[0].value
        if line.expr is not None and len(rest) == 1:
            return (name, line.expr)
        if line.expr is None and len(rest) == 2 and isinstance(rest[1], ast.StringLit | ast.EnvRef | ast.SecretRef):
            return (name, _scalar(rest[1]))
        return bad('takes a name and a value', f'write: {spec.name} "Name" = expression')
    if spec.type is OptionType.BOOLEAN:
        if not rest:
            return True
        if len(rest) == 1 and isinstance(rest[0], ast.Word) and rest[0].text.lower() in _TRUE | _FALSE:
            return rest[0].text.lower() in _TRUE
        return bad("takes yes or no", span=rest[0].span)
    if spec.type is OptionType.WORDS:
        if rest and all(isinstance(t, ast.Word) for t in rest):
            value = " ".join(t.text for t in rest)  # type: ignore[union-attr]
            if spec.choices and value not in spec.choices:
                return bad(f"does not accept '{value}'", did_you_mean(value, spec.choices)
                           or "choose one of: " + ", ".join(spec.choices), rest[0].span)
            return value
        return bad("takes words" + example)
    if spec.type is OptionType.CHOICE:
        if len(rest) == 1 and isinstance(rest[0], ast.Word | ast.StringLit | ast.NumberLit):
            token = rest[0]
            value = token.text if isinstance(token, ast.Word) else str(token.value)
            if value not in spec.choices:
                return bad(f"does not accept '{value}'", did_you_mean(value, spec.choices)
                           or "choose one of: " + ", ".join(spec.choices), rest[0].span)
            return value
        return bad("takes one of: " + ", ".join(spec.choices))
    if spec.type is OptionType.DURATION:
        if len(rest) == 1 and isinstance(rest[0], ast.DurationLit):
            return rest[0].seconds
        if len(rest) == 2 and isinstance(rest[0], ast.NumberLit) and isinstance(rest[1], ast.Word):
            unit = rest[1].text
            if unit in UNIT_SECONDS:
                return float(rest[0].value) * UNIT_SECONDS[unit]
            return bad(f"has an unknown unit of time '{unit}'", "use " + ", ".join(duration_units()[:12]),
                       rest[1].span)
        return bad("takes a duration such as 30s, 5m or 2 hours" + example)
    if spec.type is OptionType.SIZE:
        if len(rest) == 2 and isinstance(rest[0], ast.NumberLit) and isinstance(rest[1], ast.Word):
            unit = SIZE_UNITS.get(rest[1].text.lower())
            if unit is None:
                return bad(f"has an unknown unit of size '{rest[1].text}'", "use bytes, KB, MB, GB, KiB, MiB or GiB",
                           rest[1].span)
            size = rest[0].value * unit
        elif len(rest) == 1 and isinstance(rest[0], ast.NumberLit):
            size = rest[0].value
        else:
            return bad("takes a size such as 10 MB, 512 KiB or a number of bytes" + example)
        if size != size.to_integral_value():
            return bad("is not a whole number of bytes", span=rest[0].span)
        return int(size)
    if spec.type in (OptionType.INTEGER, OptionType.DECIMAL):
        if len(rest) == 1 and isinstance(rest[0], ast.NumberLit):
            number = rest[0].value
            if spec.type is OptionType.INTEGER:
                if number != number.to_integral_value():
                    return bad("takes a whole number", span=rest[0].span)
                return int(number)
            return Decimal(number)
        if len(rest) == 1 and isinstance(rest[0], ast.EnvRef):
            return _scalar(rest[0])
        return bad("takes a number" + example)
    # STRING and TEMPLATE
    if len(rest) != 1:
        return bad("takes one value in quotes" + example)
    token = rest[0]
    if spec.secret and not isinstance(token, ast.SecretRef | ast.EnvRef):
        return bad("is a secret: it must not be written in the route file", f'write: {spec.name} secret "NAME"',
                   token.span)
    if isinstance(token, ast.StringLit | ast.EnvRef | ast.SecretRef):
        return _scalar(token)
    return bad("takes a value in quotes" + example, span=token.span)


def _scalar(token: ast.OptToken) -> Any:
    if isinstance(token, ast.EnvRef):
        return Deferred("env", token.name, token.span)
    if isinstance(token, ast.SecretRef):
        return Deferred("secret", token.name, token.span)
    if isinstance(token, ast.StringLit):
        return token.value
    if isinstance(token, ast.NumberLit):
        return token.value
    if isinstance(token, ast.Word):
        return token.text
    return token.seconds


def head_option_line(tokens: Sequence[ast.OptToken], span: Span) -> ast.OptionLine | None:
    """The tokens after the connection name on an opening line, as one inline option line."""
    if not tokens:
        return None
    return ast.OptionLine(tuple(tokens), Span(span.file, tokens[0].span.line, tokens[0].span.column,
                                              tokens[-1].span.end_line, tokens[-1].span.end_column))


def _starts_another(token: ast.OptToken, previous: ast.OptToken) -> bool:
    """Whether a word after a value begins another option (values are rarely words after a value)."""
    if not isinstance(token, ast.Word):
        return False
    if isinstance(previous, ast.NumberLit):
        # `check every 30 seconds` and `max body 5 MB` are one option each
        return token.text not in UNIT_SECONDS and token.text.lower() not in SIZE_UNITS
    return isinstance(previous, ast.StringLit | ast.DurationLit | ast.EnvRef | ast.SecretRef)


def head_option_lines(tokens: Sequence[ast.OptToken], specs: Sequence[OptionSpec], span: Span) -> list[ast.OptionLine]:
    """The tokens after the connection name as option lines: a new line starts at every word that
    begins a declared option, so `to amqp "broker" exchange "orders" routing key "dal"` reads as two
    options. Tokens that begin no option stay one line, for resolve_options to report."""
    lines: list[list[ast.OptToken]] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        spec, used = match_option(tokens[index:], specs) if isinstance(token, ast.Word) else (None, 0)
        if spec is None and lines and _starts_another(token, lines[-1][-1]):
            spec, used = None, 1  # a misspelled option after a value: its own line, so OPT001 names it
            lines.append([token])
            index += used
            continue
        if spec is not None or not lines:
            lines.append(list(tokens[index:index + max(used, 1)]))
            index += max(used, 1)
            continue
        lines[-1].append(tokens[index])
        index += 1
    return [line for group in lines if (line := head_option_line(tuple(group), span)) is not None]
