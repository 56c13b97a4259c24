"""Turns the Lark parse tree of `route.lark` into the typed AST of :mod:`crossdock.dsl.ast`.

One method per grammar rule or alias, each returning a node with its span. Problems found while
building (an unknown duration unit, a bad escape) are collected in `diagnostics`, not raised, so that
the parser reports every one of them.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from lark import Token, Transformer, v_args

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import DiagnosticBag, Span

UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "week": 604800, "weeks": 604800,
}
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


def duration_units() -> list[str]:
    """The unit words a duration accepts after a number (`90 days`, `30 seconds`)."""
    return list(UNIT_SECONDS)


class AstBuilder(Transformer):
    """Builds AST nodes for one file; see the module docstring."""

    def __init__(self, path: str, diagnostics: DiagnosticBag) -> None:
        super().__init__()
        self.file = path
        self.diagnostics = diagnostics

    # ---- helpers --------------------------------------------------------------------------------

    def span(self, meta: Any) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 0, 0)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def tspan(self, token: Token) -> Span:
        return Span(self.file, token.line or 0, token.column or 0, token.end_line or 0, token.end_column or 0)

    def unquote(self, token: Token) -> str:
        raw = token.value[1:-1]
        if "\\" not in raw:
            return raw
        out: list[str] = []
        i = 0
        while i < len(raw):
            ch = raw[i]
            if ch == "\\" and i + 1 < len(raw):
                nxt = raw[i + 1]
                if nxt in _ESCAPES:
                    out.append(_ESCAPES[nxt])
                else:
                    self.diagnostics.error(
                        "DSL005",
                        f"unknown escape '\\{nxt}' in a string",
                        Span(self.file, token.line, token.column + i + 1, token.line, token.column + i + 3),
                        'write \\" for a quote, \\\\ for a backslash, \\n for a new line, \\t for a tab',
                    )
                    out.append(nxt)
                i += 2
                continue
            out.append(ch)
            i += 1
        return "".join(out)

    def whole_number(self, token: Token, what: str) -> int:
        """The NUMBER token as an int; a fraction is reported (DSL007) and read as its whole part."""
        value = Decimal(token.value)
        if value != value.to_integral_value():
            self.diagnostics.error("DSL007", f"{what} takes a whole number, not {token.value}", self.tspan(token),
                                   f"write {int(value) or 1}")
        return int(value)

    def duration_from_token(self, token: Token) -> ast.DurationLit:
        text = token.value
        digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        return ast.DurationLit(float(Decimal(digits)) * UNIT_SECONDS[text[len(digits):]], text, self.tspan(token))

    # ---- option tokens ----------------------------------------------------------------------------

    def word(self, children: list[Token]) -> ast.Word:
        return ast.Word(children[0].value, self.tspan(children[0]))

    def string(self, children: list[Token]) -> ast.StringLit:
        return ast.StringLit(self.unquote(children[0]), self.tspan(children[0]))

    def number(self, children: list[Token]) -> ast.NumberLit:
        return ast.NumberLit(Decimal(children[0].value), self.tspan(children[0]))

    def duration(self, children: list[Any]) -> ast.DurationLit:
        if len(children) == 1:
            token = children[0]
            if isinstance(token, ast.DurationLit):
                return token
            return self.duration_from_token(token)
        number, unit = children
        span = Span(self.file, number.line, number.column, unit.end_line, unit.end_column)
        if unit.value not in UNIT_SECONDS:
            self.diagnostics.error(
                "DSL004",
                f"'{unit.value}' is not a unit of time",
                self.tspan(unit),
                "use ms, seconds, minutes, hours, days or weeks, or write it joined: 30s, 5m, 2h, 90d",
            )
            # NaN: every comparison with it is false, so later checks (zero window, reversed backoff)
            # do not report a second problem for the same word.
            return ast.DurationLit(math.nan, f"{number.value} {unit.value}", span)
        seconds = float(Decimal(number.value)) * UNIT_SECONDS[unit.value]
        return ast.DurationLit(seconds, f"{number.value} {unit.value}", span)

    @v_args(meta=True)
    def env_ref(self, meta: Any, children: list[Token]) -> ast.EnvRef:
        return ast.EnvRef(self.unquote(children[0]), self.span(meta))

    @v_args(meta=True)
    def secret_ref(self, meta: Any, children: list[Token]) -> ast.SecretRef:
        return ast.SecretRef(self.unquote(children[0]), self.span(meta))

    def DURATION(self, token: Token) -> ast.DurationLit:
        return self.duration_from_token(token)

    @v_args(meta=True)
    def option(self, meta: Any, children: list[Any]) -> ast.OptionLine:
        expr = None
        tokens = list(children)
        if tokens and not isinstance(tokens[-1], ast.OptToken):
            expr = tokens.pop()
        return ast.OptionLine(tuple(tokens), self.span(meta), expr)

    # ---- top level ----------------------------------------------------------------------------

    def start(self, children: list[Any]) -> list[Any]:
        return list(children)

    @v_args(meta=True)
    def connection(self, meta: Any, children: list[Any]) -> ast.Connection:
        name, kind, *options = children
        kind_name = ast.Name(kind.value, self.tspan(kind))
        return ast.Connection(self.unquote(name), self.tspan(name), kind_name, tuple(options), self.span(meta))

    @v_args(meta=True)
    def partner(self, meta: Any, children: list[Any]) -> ast.Partner:
        name, *options = children
        return ast.Partner(self.unquote(name), self.tspan(name), tuple(options), self.span(meta))

    @v_args(meta=True)
    def acknowledge(self, meta: Any, children: list[Any]) -> ast.Acknowledge:
        kind = None
        if children and isinstance(children[0], Token) and children[0].type == "NUMBER":
            token = children.pop(0)
            kind = ast.NumberLit(Decimal(token.value), self.tspan(token))
        return ast.Acknowledge(kind, self.endpoint(meta, children), self.span(meta))

    @v_args(meta=True)
    def policy(self, meta: Any, children: list[Any]) -> ast.Policy:
        name, *settings = children
        return ast.Policy(self.unquote(name), self.tspan(name), tuple(settings), self.span(meta))

    @v_args(meta=True)
    def retry(self, meta: Any, children: list[Any]) -> ast.Retry:
        count = self.whole_number(children[0], "`retry N times`")
        backoff = children[1] if len(children) > 1 else None
        return ast.Retry(count, backoff, self.span(meta))

    @v_args(meta=True)
    def no_retry(self, meta: Any, children: list[Any]) -> ast.Retry:
        return ast.Retry(0, None, self.span(meta))

    @v_args(meta=True)
    def exponential(self, meta: Any, children: list[Any]) -> ast.Backoff:
        initial, maximum, *rest = children
        return ast.Backoff("exponential", initial, maximum, bool(rest), self.span(meta))

    @v_args(meta=True)
    def fixed(self, meta: Any, children: list[Any]) -> ast.Backoff:
        initial, *rest = children
        return ast.Backoff("fixed", initial, None, bool(rest), self.span(meta))

    def jitter(self, children: list[Any]) -> bool:
        return True

    @v_args(meta=True)
    def retry_on(self, meta: Any, children: list[Token]) -> ast.RetryOn:
        return ast.RetryOn(tuple(ast.Name(t.value, self.tspan(t)) for t in children), self.span(meta))

    @v_args(meta=True)
    def dead_letter(self, meta: Any, children: list[Any]) -> ast.DeadLetter:
        return ast.DeadLetter(self.endpoint(meta, children), self.span(meta))

    @v_args(meta=True)
    def concurrency(self, meta: Any, children: list[Token]) -> ast.Concurrency:
        return ast.Concurrency(self.whole_number(children[0], "`process N at a time`"), self.span(meta))

    # ---- routes -------------------------------------------------------------------------------

    def endpoint(self, meta: Any, children: list[Any]) -> ast.Endpoint:
        kind, *rest = children
        head = tuple(c for c in rest if not isinstance(c, ast.OptionLine))
        options = tuple(c for c in rest if isinstance(c, ast.OptionLine))
        return ast.Endpoint(ast.Name(kind.value, self.tspan(kind)), head, options, self.span(meta))

    @v_args(meta=True)
    def route(self, meta: Any, children: list[Any]) -> ast.Route:
        name, source, *steps = children
        return ast.Route(self.unquote(name), self.tspan(name), source, tuple(steps), self.span(meta))

    @v_args(meta=True)
    def source(self, meta: Any, children: list[Any]) -> ast.Endpoint:
        return self.endpoint(meta, children)

    @v_args(meta=True)
    def read(self, meta: Any, children: list[Any]) -> ast.Read:
        return ast.Read(self.endpoint(meta, children), self.span(meta))

    @v_args(meta=True)
    def split(self, meta: Any, children: list[Any]) -> ast.Split:
        return ast.Split(children[0], self.span(meta))

    @v_args(meta=True)
    def filter(self, meta: Any, children: list[Any]) -> ast.Filter:
        return ast.Filter(children[0], self.span(meta))

    @v_args(meta=True)
    def dedupe(self, meta: Any, children: list[Any]) -> ast.Dedupe:
        return ast.Dedupe(children[0], children[1], self.span(meta))

    @v_args(meta=True)
    def track(self, meta: Any, children: list[Any]) -> ast.Track:
        return ast.Track(tuple(children), self.span(meta))

    @v_args(meta=True)
    def map_step(self, meta: Any, children: list[Token]) -> ast.MapStep:
        return ast.MapStep(self.unquote(children[0]), self.tspan(children[0]), self.span(meta))

    @v_args(meta=True)
    def reject(self, meta: Any, children: list[Token]) -> ast.Reject:
        return ast.Reject(self.unquote(children[0]), self.tspan(children[0]), self.span(meta))

    @v_args(meta=True)
    def validate(self, meta: Any, children: list[Token]) -> ast.Validate:
        return ast.Validate(ast.Name(children[0].value, self.tspan(children[0])), self.span(meta))

    @v_args(meta=True)
    def sink(self, meta: Any, children: list[Any]) -> ast.Sink:
        return ast.Sink(self.endpoint(meta, children), self.span(meta))

    @v_args(meta=True)
    def call_step(self, meta: Any, children: list[Any]) -> ast.CallStep:
        return ast.CallStep(self.endpoint(meta, children), self.span(meta))

    @v_args(meta=True)
    def reply(self, meta: Any, children: list[Any]) -> ast.Reply:
        status, *options = children
        return ast.Reply(ast.NumberLit(Decimal(status.value), self.tspan(status)), tuple(options), self.span(meta))

    @v_args(meta=True)
    def fanout(self, meta: Any, children: list[Any]) -> ast.FanOut:
        branches = tuple(
            c if isinstance(c, ast.Branch) else ast.Branch(None, (c,), c.span) for c in children
        )
        return ast.FanOut(branches, self.span(meta))

    @v_args(meta=True)
    def branch_block(self, meta: Any, children: list[Any]) -> ast.Branch:
        name, *steps = children
        return ast.Branch(self.unquote(name), tuple(steps), self.span(meta))

    @v_args(meta=True)
    def choice(self, meta: Any, children: list[Any]) -> ast.Choice:
        clauses = tuple(c for c in children if isinstance(c, ast.WhenClause))
        otherwise = next((c for c in children if isinstance(c, tuple)), None)
        otherwise_span = otherwise[1] if otherwise else None
        return ast.Choice(clauses, otherwise[0] if otherwise else None, self.span(meta), otherwise_span)

    @v_args(meta=True)
    def when_clause(self, meta: Any, children: list[Any]) -> ast.WhenClause:
        condition, *steps = children
        return ast.WhenClause(condition, tuple(steps), self.span(meta))

    @v_args(meta=True)
    def otherwise_clause(self, meta: Any, children: list[Any]) -> tuple[tuple[Any, ...], Span]:
        return tuple(children), self.span(meta)

    @v_args(meta=True)
    def use_policy(self, meta: Any, children: list[Token]) -> ast.UsePolicy:
        return ast.UsePolicy(self.unquote(children[0]), self.tspan(children[0]), self.span(meta))

    # ---- maps and tables ----------------------------------------------------------------------

    @v_args(meta=True)
    def map(self, meta: Any, children: list[Any]) -> ast.MapDef:
        name, source, target, *items = children
        return ast.MapDef(self.unquote(name), self.tspan(name), source, target, tuple(items), self.span(meta))

    @v_args(meta=True)
    def map_source(self, meta: Any, children: list[Any]) -> ast.MapType:
        kind, *args = children
        return ast.MapType(ast.Name(kind.value, self.tspan(kind)), tuple(args), self.span(meta))

    map_target = map_source

    @v_args(meta=True)
    def target(self, meta: Any, children: list[Token]) -> ast.Target:
        return ast.Target(tuple(t.value for t in children), self.span(meta))

    @v_args(meta=True)
    def assign(self, meta: Any, children: list[Any]) -> ast.Assign:
        return ast.Assign(children[0], children[1], self.span(meta))

    @v_args(meta=True)
    def assign_each(self, meta: Any, children: list[Any]) -> ast.AssignEach:
        target, over, *rest = children
        where = None
        if rest and isinstance(rest[0], tuple) and rest[0] and rest[0][0] == "where":
            where = rest.pop(0)[1]
        return ast.AssignEach(target, over, where, tuple(rest), self.span(meta))

    def where(self, children: list[Any]) -> tuple[str, Any]:
        return ("where", children[0])

    @v_args(meta=True)
    def assign_object(self, meta: Any, children: list[Any]) -> ast.AssignObject:
        target, *rest = children
        context = None
        if rest and not isinstance(rest[0], ast.MapItem):
            context = rest.pop(0)
        return ast.AssignObject(target, context, tuple(rest), self.span(meta))

    @v_args(meta=True)
    def map_when(self, meta: Any, children: list[Any]) -> ast.MapWhen:
        clauses = tuple(c for c in children if c[0] == "when")
        otherwise = next((c[1] for c in children if c[0] == "otherwise"), None)
        return ast.MapWhen(tuple((c[1], c[2]) for c in clauses), otherwise, self.span(meta))

    def map_when_clause(self, children: list[Any]) -> tuple[str, Any, tuple[Any, ...]]:
        condition, *items = children
        return ("when", condition, tuple(items))

    def map_otherwise(self, children: list[Any]) -> tuple[str, tuple[Any, ...]]:
        return ("otherwise", tuple(children))

    @v_args(meta=True)
    def map_test(self, meta: Any, children: list[Any]) -> ast.MapTest:
        name, *settings = children
        return ast.MapTest(self.unquote(name), tuple(settings), self.span(meta))

    def test_setting(self, children: list[Token]) -> tuple[ast.Name, ast.StringLit]:
        key, value = children
        return ast.Name(key.value, self.tspan(key)), ast.StringLit(self.unquote(value), self.tspan(value))

    @v_args(meta=True)
    def table_inline(self, meta: Any, children: list[Any]) -> ast.Table:
        name, *entries = children
        return ast.Table(ast.Name(name.value, self.tspan(name)), tuple(entries), self.span(meta))

    @v_args(meta=True)
    def table_csv(self, meta: Any, children: list[Any]) -> ast.Table:
        name, path, *options = children
        return ast.Table(
            ast.Name(name.value, self.tspan(name)),
            (),
            self.span(meta),
            ast.StringLit(self.unquote(path), self.tspan(path)),
            tuple(options),
        )

    @v_args(meta=True)
    def table_entry(self, meta: Any, children: list[ast.Literal]) -> ast.TableEntry:
        return ast.TableEntry(children[0], children[1], self.span(meta))

    # ---- expressions --------------------------------------------------------------------------

    def _binary(op: str):
        @v_args(meta=True)
        def build(self: AstBuilder, meta: Any, children: list[Any]) -> ast.Binary:
            left, right = children
            return ast.Binary(op, left, right, self.span(meta))

        return build

    add = _binary("+")
    subtract = _binary("-")
    multiply = _binary("*")
    divide = _binary("/")
    equal = _binary("=")
    and_ = _binary("and")
    or_ = _binary("or")
    default = _binary("default")
    del _binary

    @v_args(meta=True)
    def compare(self, meta: Any, children: list[Any]) -> ast.Binary:
        left, op, right = children
        return ast.Binary(op.value, left, right, self.span(meta))

    @v_args(meta=True)
    def not_(self, meta: Any, children: list[Any]) -> ast.Unary:
        return ast.Unary("not", children[0], self.span(meta))

    @v_args(meta=True)
    def negate(self, meta: Any, children: list[Any]) -> ast.Unary:
        return ast.Unary("-", children[0], self.span(meta))

    @v_args(meta=True)
    def in_(self, meta: Any, children: list[Any]) -> ast.InList:
        value, *options = children
        return ast.InList(value, tuple(o for o in options), self.span(meta))

    @v_args(meta=True)
    def is_missing(self, meta: Any, children: list[Any]) -> ast.Presence:
        return ast.Presence(children[0], False, self.span(meta))

    @v_args(meta=True)
    def is_present(self, meta: Any, children: list[Any]) -> ast.Presence:
        return ast.Presence(children[0], True, self.span(meta))

    @v_args(meta=True)
    def call(self, meta: Any, children: list[Any]) -> ast.Call:
        name, *args = children
        return ast.Call(name.value, tuple(a for a in args if a is not None), self.span(meta))

    @v_args(meta=True)
    def path(self, meta: Any, children: list[ast.PathStep]) -> ast.Path:
        return ast.Path(tuple(children), self.span(meta))

    @v_args(meta=True)
    def step_part(self, meta: Any, children: list[Any]) -> ast.PathStep:
        name = children[0]
        qualifier = children[1] if len(children) > 1 else None
        return ast.PathStep(name.value, self.span(meta), qualifier)

    def jsonpath(self, children: list[Token]) -> ast.JsonPath:
        return ast.JsonPath(children[0].value, self.tspan(children[0]))

    @v_args(meta=True)
    def literal(self, meta: Any, children: list[Token]) -> ast.Literal:
        token = children[0]
        value = self.unquote(token) if token.type == "STRING" else Decimal(token.value)
        return ast.Literal(value, self.span(meta))

    @v_args(meta=True)
    def true(self, meta: Any, children: list[Token]) -> ast.Literal:
        return ast.Literal(True, self.span(meta))

    @v_args(meta=True)
    def false(self, meta: Any, children: list[Token]) -> ast.Literal:
        return ast.Literal(False, self.span(meta))

    @v_args(meta=True)
    def null(self, meta: Any, children: list[Token]) -> ast.Literal:
        return ast.Literal(None, self.span(meta))
