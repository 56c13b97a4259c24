"""The typed syntax tree of route files. Every node keeps the span of the text it came from.

Nodes are frozen dataclasses: the transformer builds them once, lint reads them, the compiler turns
them into a pipeline. Nothing here executes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crossdock.dsl.diagnostics import Span


@dataclass(frozen=True, slots=True)
class Name:
    """An identifier or keyword-like word, with where it was written."""

    text: str
    span: Span


# ---- option tokens --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Word:
    """A bare word in an option line (`known`, `hosts`, `bearer`)."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class StringLit:
    """A double-quoted string, escapes already decoded."""

    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class NumberLit:
    """A number, kept exact as a Decimal."""

    value: Decimal
    span: Span


@dataclass(frozen=True, slots=True)
class DurationLit:
    """A duration such as `30s`, `5m` or `90 days`, in seconds (NaN when the unit was not understood)."""

    seconds: float
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class EnvRef:
    """`env "NAME"`: read from the environment when the route starts."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class SecretRef:
    """`secret "NAME"`: read from the secrets folder or the environment; never logged."""

    name: str
    span: Span


OptToken = Word | StringLit | NumberLit | DurationLit | EnvRef | SecretRef


@dataclass(frozen=True, slots=True)
class OptionLine:
    """One loose option line: words and values, and optionally `= expression`.

    Which words form the option's name and what the values mean is decided by the option schema of
    the connector, format or step the line belongs to (see :mod:`crossdock.dsl.options`).
    """

    tokens: tuple[OptToken, ...]
    span: Span
    expr: Expr | None = None


# ---- expressions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: str, Decimal, bool or None."""

    value: Any
    span: Span


@dataclass(frozen=True, slots=True)
class PathStep:
    """One step of a path: a name and an optional `[qualifier]` (a condition, an index or a table key)."""

    name: str
    span: Span
    qualifier: Expr | None = None


@dataclass(frozen=True, slots=True)
class Path:
    """A dotted path such as `customer.address.city`, `N1[N101 = "ST"].N102` or `out.lines.amount`."""

    steps: tuple[PathStep, ...]
    span: Span

    @property
    def dotted(self) -> str:
        return ".".join(s.name for s in self.steps)


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A JSONPath expression in jsonpath-ng syntax, starting at the document root (`$.items[*].sku`)."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """A call of a function from the fixed library (:mod:`crossdock.engine.mapping.functions`)."""

    name: str
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Binary:
    """`left op right`; op is one of + - * / = != < <= > >= and or default."""

    op: str
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Unary:
    """`not x` or `-x`."""

    op: str
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class InList:
    """`value in (a, b, c)`."""

    value: Expr
    options: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Presence:
    """`value is missing` (present=False) or `value is present` (present=True)."""

    value: Expr
    present: bool
    span: Span


Expr = Literal | Path | JsonPath | Call | Binary | Unary | InList | Presence


# ---- connections, policies ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connection:
    """`connection "name" is kind ... end`: where a system is and how to log in."""

    name: str
    name_span: Span
    kind: Name
    options: tuple[OptionLine, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Partner:
    """`partner "name" ... end`: a trading partner's EDI profile (identifiers, version, acknowledgments)."""

    name: str
    name_span: Span
    options: tuple[OptionLine, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait between attempts: exponential from `initial` up to `maximum`, or fixed."""

    kind: str
    initial: DurationLit
    maximum: DurationLit | None
    jitter: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Retry:
    """`retry N times [backoff ...]`; attempts=0 is `never retry`."""

    attempts: int
    backoff: Backoff | None
    span: Span


@dataclass(frozen=True, slots=True)
class RetryOn:
    """`retry on timeout, throttled`: which transient error kinds are retried."""

    kinds: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A connector used as a source, a sink or a dead-letter target, or a format used by `read`.

    `head` holds the tokens on the opening line after the kind (usually the connection name, then an
    inline option); `options` the option lines below it.
    """

    kind: Name
    head: tuple[OptToken, ...]
    options: tuple[OptionLine, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """`dead letter to store` or `dead letter to queue "conn" queue "name"`."""

    target: Endpoint
    span: Span


@dataclass(frozen=True, slots=True)
class Concurrency:
    """`process N at a time`: how many messages of a route are worked on at once."""

    count: int
    span: Span


PolicySetting = Retry | RetryOn | DeadLetter | Concurrency


@dataclass(frozen=True, slots=True)
class Policy:
    """`policy "name" ... end`: reusable retry and dead-letter settings."""

    name: str
    name_span: Span
    settings: tuple[PolicySetting, ...]
    span: Span


# ---- routes ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Read:
    """`read json`, `read x12 850`: decode the payload with a format."""

    format: Endpoint
    span: Span


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """`acknowledge with 997 to file "acks"`: send the X12 acknowledgment of what was read.

    `kind` is 997 or 999, or None to take the partner's choice (999 for 005010, else 997).
    """

    kind: NumberLit | None
    endpoint: Endpoint
    span: Span


@dataclass(frozen=True, slots=True)
class Split:
    """`for each PATH`: one message per element; the source is acked when all of them are done."""

    over: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Filter:
    """`keep only when CONDITION`: others are acked and counted as filtered."""

    condition: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Dedupe:
    """`skip duplicates by KEY for DURATION`: idempotency on a business key."""

    key: Expr
    ttl: DurationLit
    span: Span


@dataclass(frozen=True, slots=True)
class Track:
    """`track by KEY [, KEY]`: the business keys lineage (`crossdock trace`) finds the message by."""

    keys: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class MapStep:
    """`map with "name"`."""

    name: str
    name_span: Span
    span: Span


@dataclass(frozen=True, slots=True)
class Reject:
    """`reject "why"`: dead-letter the message on purpose, with `why` as the error (R007)."""

    reason: str
    reason_span: Span
    span: Span


@dataclass(frozen=True, slots=True)
class Validate:
    """`validate as Model`: check the body against a canonical model."""

    model: Name
    span: Span


@dataclass(frozen=True, slots=True)
class Sink:
    """`to kind "connection" ...`: deliver; the source is acked only after every sink confirmed."""

    endpoint: Endpoint
    span: Span


@dataclass(frozen=True, slots=True)
class CallStep:
    """`call rest "erp" get "/prices/{{ sku }}"`: a request whose answer becomes the message (lookups)."""

    endpoint: Endpoint
    span: Span


@dataclass(frozen=True, slots=True)
class Reply:
    """`reply 200`: answer the waiting caller of a request-reply source with the message as it is now."""

    status: NumberLit
    options: tuple[OptionLine, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Branch:
    """One branch of `send to all`: its own steps, retried on its own."""

    name: str | None
    steps: tuple[Step, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class FanOut:
    """`send to all ... end`: every branch runs concurrently; the source waits for all of them."""

    branches: tuple[Branch, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class WhenClause:
    """`when CONDITION` followed by the steps taken when it holds."""

    condition: Expr
    steps: tuple[Step, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Choice:
    """`when ... when ... otherwise ... end`: the first clause that holds wins."""

    clauses: tuple[WhenClause, ...]
    otherwise: tuple[Step, ...] | None
    span: Span
    otherwise_span: Span | None = None


@dataclass(frozen=True, slots=True)
class UsePolicy:
    """`use policy "name"`."""

    name: str
    name_span: Span
    span: Span


Step = (Read | Acknowledge | Split | Filter | Dedupe | Track | MapStep | Validate | Sink | CallStep | Reply | FanOut
        | Choice | Reject | UsePolicy | PolicySetting)


@dataclass(frozen=True, slots=True)
class Route:
    """`route "name" from ... steps ... end`."""

    name: str
    name_span: Span
    source: Endpoint
    steps: tuple[Step, ...]
    span: Span


# ---- maps and tables ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """The left side of an assignment: a dotted field path in the output."""

    parts: tuple[str, ...]
    span: Span

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Assign:
    """`target = expression`."""

    target: Target
    expr: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class AssignEach:
    """`target = for each PATH [where CONDITION] ... end`: builds a list, one object per element."""

    target: Target
    over: Expr
    where: Expr | None
    items: tuple[MapItem, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class AssignObject:
    """`target = object [from PATH] ... end`: builds a nested object."""

    target: Target
    context: Expr | None
    items: tuple[MapItem, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class MapWhen:
    """Conditional assignments: `when C ... when D ... otherwise ... end`."""

    clauses: tuple[tuple[Expr, tuple[MapItem, ...]], ...]
    otherwise: tuple[MapItem, ...] | None
    span: Span


@dataclass(frozen=True, slots=True)
class MapTest:
    """`test "name" input "file" expect "file" end`: a golden-file fixture inside the map."""

    name: str
    settings: tuple[tuple[Name, StringLit], ...]
    span: Span


@dataclass(frozen=True, slots=True)
class TableEntry:
    """`"EA" -> "each"`."""

    key: Literal
    value: Literal
    span: Span


@dataclass(frozen=True, slots=True)
class Table:
    """A lookup table, inline (`entries`) or read from a CSV file (`csv`)."""

    name: Name
    entries: tuple[TableEntry, ...]
    span: Span
    csv: StringLit | None = None
    csv_options: tuple[OptToken, ...] = ()


MapItem = Assign | AssignEach | AssignObject | MapWhen | Table | MapTest


@dataclass(frozen=True, slots=True)
class MapType:
    """`from json`, `from x12 850`, `to Order`, `from json schema "file"`: a kind and its arguments."""

    kind: Name
    args: tuple[OptToken, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class MapDef:
    """`map "name" from ... to ... assignments ... end`."""

    name: str
    name_span: Span
    source: MapType
    target: MapType
    items: tuple[MapItem, ...]
    span: Span

    @property
    def tables(self) -> tuple[Table, ...]:
        return tuple(i for i in self.items if isinstance(i, Table))

    @property
    def tests(self) -> tuple[MapTest, ...]:
        return tuple(i for i in self.items if isinstance(i, MapTest))


Definition = Connection | Partner | Policy | Route | MapDef | Table


@dataclass(frozen=True, slots=True)
class Module:
    """One parsed route file."""

    path: str
    definitions: tuple[Definition, ...]
    text: str = field(repr=False, default="")
