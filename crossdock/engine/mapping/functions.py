"""The fixed function library of the map language: the only code a route file can call.

A map never runs Python of its own; an expression such as ``date(BEG05, "CCYYMMDD")`` calls one of
the functions registered in :data:`FUNCTIONS`, each declared by a :class:`FunctionSpec` (arity, summary,
an example line, tested examples). ``docs/functions.md`` is rendered from this registry
(``python -m crossdock.engine.mapping.functions``) and a test keeps it in sync.

Values are those of the expression language: str, Decimal, int, bool, None, list and dict. Rules
that hold for every function:

- Missing input propagates: when the main argument is None the result is None, so that
  ``date(DTM02, "CCYYMMDD") default "2024-01-01"`` works. Conversions (date, datetime, decimal,
  integer) also treat blank text as missing, since X12 and CSV send empty fields.
- Numbers are Decimal, never float. Numeric text ("12.50") is accepted wherever a number is
  expected; a float is refused with an error saying to pass text, because a float has already lost
  the digits the document had.
- Dates are ISO 8601 text on the canonical side ("2024-01-05", "2024-01-05T14:30:00").
- A function that cannot do its job raises :class:`FunctionError` with a plain message naming the
  offending value; the map compiler adds the function's name and the map line.

Calling convention (what the compiler does with a spec):

- plain functions: ``impl(*values)``, one value per argument written;
- ``needs_context``: ``impl(context, *values)`` with a :class:`FunctionContext` (clock, uuid source);
- ``lazy`` (only ``if``): ``impl(*thunks)``, each argument as a zero-argument callable that evaluates
  it, so that the branch not taken is never evaluated (it may fail, or be slow).
- ``bind``: when every argument after the first is a literal, the compiler calls
  ``bind(*literals)`` once and then the function it returns with the first value only, so that a
  date format or a substring position is checked once per map, not once per message. A literal
  that ``bind`` refuses (FunctionError) keeps the plain call, which then fails when the map runs.

The compiler checks the number of arguments against ``min_args``/``max_args`` before calling. It
also reads ``result_type``, taken from the implementation's return annotation, to skip type checks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import re
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, get_args, get_type_hints

from crossdock.engine.clock import Clock, SystemClock

DOCS_PATH = Path(__file__).resolve().parents[3] / "docs" / "functions.md"


class FunctionError(Exception):
    """A function could not produce a value; the message names the offending value."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class FunctionContext:
    """What `today()`, `now()` and `uuid()` read, so that tests and `crossdock test` can fix them."""

    clock: Clock = field(default_factory=SystemClock)
    uuid4: Callable[[], uuid.UUID] = uuid.uuid4


@dataclass(frozen=True, slots=True)
class Example:
    """A call with literal arguments and its result: shown in the docs and run by the tests."""

    args: tuple[Any, ...]
    result: Any


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One function of the map language (see the module docstring for the calling convention)."""

    name: str
    params: str
    """The parameters as the docs show them; `?` marks an optional one, `...` any number."""
    category: str
    min_args: int
    max_args: int | None
    """None: any number of arguments."""
    summary: str
    example: str
    """A line of route-language text using the function, as a map would."""
    returns: str
    impl: Callable[..., Any]
    lazy: bool = False
    needs_context: bool = False
    examples: tuple[Example, ...] = ()
    result_type: type | None = None
    """The exact type of every result that is not null (str, Decimal, int, bool, list); None: it varies."""
    bind: Callable[..., Callable[[Any], Any]] | None = None
    """Pre-binds literal arguments after the first (see the module docstring)."""

    @property
    def signature(self) -> str:
        return f"{self.name}({self.params})"


FUNCTIONS: dict[str, FunctionSpec] = {}
"""Every function of the map language by name."""

CATEGORIES = ("dates", "numbers", "text", "lists", "other")


def _function(
    name: str,
    params: str,
    *,
    category: str,
    summary: str,
    example: str,
    returns: str,
    min_args: int,
    max_args: int | None,
    examples: Sequence[tuple[tuple[Any, ...], Any]] = (),
    lazy: bool = False,
    needs_context: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated implementation under `name`; keeps each declaration next to its code."""
    assert category in CATEGORIES, category

    def register(impl: Callable[..., Any]) -> Callable[..., Any]:
        FUNCTIONS[name] = FunctionSpec(
            name=name, params=params, category=category, min_args=min_args, max_args=max_args,
            summary=summary, example=example, returns=returns, impl=impl, lazy=lazy,
            needs_context=needs_context, examples=tuple(Example(args, result) for args, result in examples),
            result_type=_result_type(impl),
        )
        return impl

    return register


def _result_type(impl: Callable[..., Any]) -> type | None:
    """The one type an implementation's return annotation allows besides None (`str | None`: str)."""
    annotation = get_type_hints(impl)["return"]
    members = [member for member in (get_args(annotation) or (annotation,)) if member is not type(None)]
    if len(members) != 1:
        return None
    (member,) = members
    origin = getattr(member, "__origin__", member)  # list[str] -> list
    return origin if isinstance(origin, type) and origin is not Any else None


def _binds(name: str) -> Callable[[Callable[..., Callable[[Any], Any]]], Callable[..., Callable[[Any], Any]]]:
    """Register the decorated function as the `bind` of function `name` (see the module docstring)."""

    def register(bind: Callable[..., Callable[[Any], Any]]) -> Callable[..., Callable[[Any], Any]]:
        FUNCTIONS[name] = dataclasses.replace(FUNCTIONS[name], bind=bind)
        return bind

    return register


# ---- shared conversions ------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A value as the route language would write it, for error messages."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return str(value)


def _blank(value: Any) -> bool:
    """Missing for conversions: None or text with nothing but spaces."""
    return value is None or (isinstance(value, str) and not value.strip())


def _is_missing(value: Any) -> bool:
    # The same rule as `is_missing` of the expression language: None, empty text, an empty list.
    return value is None or value == "" or value == []


_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _number(value: Any) -> Decimal:
    """`value` as a Decimal: numbers and numeric text; FunctionError for anything else."""
    if isinstance(value, bool):
        raise FunctionError(f"expected a number, got {_show(value)}")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise FunctionError(f"{value} is not a finite number")
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        raise FunctionError(
            f'got the float {value!r}; pass text such as "{value!r}" so that the digits stay exact'
        )
    if isinstance(value, str):
        text = value.strip()
        # Decimal() alone would also take "1_000", "NaN" and "Infinity"; documents mean none of them.
        if not _NUMBER_TEXT.fullmatch(text):
            hint = "; remove thousands separators first with replace()" if "," in text else ""
            raise FunctionError(f"{_show(value)} is not a number{hint}")
        return Decimal(text)
    raise FunctionError(f"expected a number, got {_show(value)}")


def _whole(value: Any, what: str) -> int:
    """`value` as an int for counts, widths and positions; FunctionError naming `what` otherwise."""
    if value is None:
        raise FunctionError(f"{what} is missing")
    try:
        number = _number(value)
    except FunctionError as error:
        raise FunctionError(f"{what}: {error.message}") from None
    if number != number.to_integral_value():
        raise FunctionError(f"{what} must be a whole number, got {_show(number)}")
    return int(number)


def _text(value: Any) -> str:
    """`value` as text: Decimal without an exponent, booleans as true/false, dates as ISO."""
    if isinstance(value, str):
        # plain text, also for a subclass (a canonical Unit): results are exactly `str` (see result_type)
        return value if type(value) is str else str.__str__(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise FunctionError(f"cannot turn {_show(value)} into text")


def _required_text(value: Any, what: str) -> str:
    if value is None:
        raise FunctionError(f"{what} is missing")
    return _text(value)


def _items(value: Any) -> list[Any]:
    """A list argument; a single value counts as a list of one (a path that matched once)."""
    return value if isinstance(value, list) else [value]


# ---- dates -------------------------------------------------------------------------------------

# Longest tokens first, so that YYYY is not read as YY twice; MM is the month and mm the minutes.
_DATE_TOKENS = re.compile(r"YYYY|CCYY|YY|MM|DD|HH|mm|ss")
# Each token: the datetime field it gives and its width in digits.
_TOKEN_FIELDS = {"YYYY": ("year", 4), "CCYY": ("year", 4), "YY": ("year", 2), "MM": ("month", 2),
                 "DD": ("day", 2), "HH": ("hour", 2), "mm": ("minute", 2), "ss": ("second", 2)}


# The position of each field in datetime's arguments (year, month, day, hour, minute, second).
_FIELD_POSITIONS = {"year": 0, "month": 1, "day": 2, "hour": 3, "minute": 4, "second": 5}


def _date_reader(fmt: Any) -> Callable[[str], dt.datetime]:
    """The function that reads text written in `fmt`; FunctionError for a format that is not one."""
    if not isinstance(fmt, str) or not fmt:
        raise FunctionError(f"the format must be text such as \"CCYYMMDD\", got {_show(fmt)}")
    return _format_reader(fmt)


@functools.lru_cache(maxsize=256)
def _format_reader(fmt: str) -> Callable[[str], dt.datetime]:
    pattern, tokens = _date_format(fmt)
    # per group: where its number goes, and whether it is a two-digit year
    places = tuple((_FIELD_POSITIONS[_TOKEN_FIELDS[token][0]], token == "YY") for token in tokens)

    def read(value: str) -> dt.datetime:
        match = pattern.fullmatch(value.strip())
        if match is None:
            raise FunctionError(f"{_show(value)} does not match the format {_show(fmt)}")
        parts = [0, 0, 0, 0, 0, 0]
        for (position, two_digit_year), digits in zip(places, match.groups(), strict=True):
            number = int(digits)
            if two_digit_year:
                # The POSIX pivot, as Python's %y: 69-99 are 1969-1999, 00-68 are 2000-2068.
                number += 1900 if number >= 69 else 2000
            parts[position] = number
        try:
            return dt.datetime(*parts)
        except ValueError as error:
            raise FunctionError(f"{_show(value)} is not a valid date ({error})") from None

    return read


def _date_format(fmt: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """The pattern that reads `fmt`, and the token of each of its groups in order."""
    pattern: list[str] = []
    tokens: list[str] = []
    position = 0
    for match in _DATE_TOKENS.finditer(fmt):
        token = match.group()
        field_name, width = _TOKEN_FIELDS[token]
        if field_name in {_TOKEN_FIELDS[t][0] for t in tokens}:
            raise FunctionError(f"the format {_show(fmt)} gives the {field_name} twice")
        pattern += [re.escape(fmt[position : match.start()]), f"([0-9]{{{width}}})"]
        tokens.append(token)
        position = match.end()
    pattern.append(re.escape(fmt[position:]))
    fields = {_TOKEN_FIELDS[t][0] for t in tokens}
    if not {"year", "month", "day"} <= fields:
        raise FunctionError(f"the format {_show(fmt)} needs a year (YYYY, CCYY or YY), MM and DD")
    return re.compile("".join(pattern)), tuple(tokens)


def _parse_iso(value: Any) -> dt.date:
    """An ISO 8601 date or datetime (a datetime when the text has a time part)."""
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise FunctionError(f"expected an ISO date such as \"2024-01-05\", got {_show(value)}")
    text = value.strip()
    try:
        if "T" in text or " " in text:
            return dt.datetime.fromisoformat(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise FunctionError(f"{_show(value)} is not an ISO 8601 date such as \"2024-01-05\"") from None


@_function(
    "date", "value, format?", category="dates", min_args=1, max_args=2, returns="text (an ISO date)",
    summary="Reads a date written in `format` and returns it as ISO 8601 (YYYY-MM-DD). Tokens: YYYY or "
    "CCYY (4-digit year), YY (2-digit year: 00-68 are 20xx, 69-99 are 19xx), MM, DD, HH, mm (minutes), "
    "ss; every token is exactly that many digits and any other character must appear as written. "
    "Without a format the value must be ISO 8601 already (a datetime gives its day).",
    example='order_date = date(BEG05, "CCYYMMDD")',
    examples=[(("20240105", "CCYYMMDD"), "2024-01-05"), (("05/01/24", "DD/MM/YY"), "2024-01-05"),
              (("2024-01-05T14:30:00",), "2024-01-05")],
)
def _date(value: Any, fmt: Any = None) -> str | None:
    if _blank(value):
        return None
    if fmt is None:
        parsed = _parse_iso(value)
        return (parsed.date() if isinstance(parsed, dt.datetime) else parsed).isoformat()
    text = _text(value)
    return _date_reader(fmt)(text).date().isoformat()


@_binds("date")
def _bind_date(fmt: Any) -> Callable[[Any], str | None]:
    if fmt is None:
        return _date
    read = _date_reader(fmt)

    def date(value: Any) -> str | None:
        return None if _blank(value) else read(_text(value)).date().isoformat()

    return date


@_function(
    "datetime", "value, format?", category="dates", min_args=1, max_args=2,
    returns="text (an ISO datetime)",
    summary="Reads a date and time written in `format` (tokens as for `date`; missing HH, mm or ss "
    "count as 0) and returns ISO 8601 (YYYY-MM-DDTHH:MM:SS). Without a format the value must be ISO "
    "8601 already; an offset such as +02:00 is kept.",
    example='shipped_at = datetime(concat(DTM02, DTM03), "CCYYMMDDHHmm")',
    examples=[(("202401051430", "CCYYMMDDHHmm"), "2024-01-05T14:30:00"),
              (("2024-01-05",), "2024-01-05T00:00:00")],
)
def _datetime(value: Any, fmt: Any = None) -> str | None:
    if _blank(value):
        return None
    if fmt is None:
        parsed = _parse_iso(value)
        if not isinstance(parsed, dt.datetime):
            parsed = dt.datetime.combine(parsed, dt.time())
        return parsed.isoformat()
    text = _text(value)
    return _date_reader(fmt)(text).isoformat()


@_binds("datetime")
def _bind_datetime(fmt: Any) -> Callable[[Any], str | None]:
    if fmt is None:
        return _datetime
    read = _date_reader(fmt)

    def datetime(value: Any) -> str | None:
        return None if _blank(value) else read(_text(value)).isoformat()

    return datetime


@_function(
    "format_date", "iso_value, format", category="dates", min_args=2, max_args=2, returns="text",
    summary="Writes an ISO date or datetime in `format` (tokens as for `date`; HH, mm and ss of a "
    "date are 00), for documents that want dates such as CCYYMMDD.",
    example='DTM02 = format_date(out.ship_date, "CCYYMMDD")',
    examples=[(("2024-01-05", "CCYYMMDD"), "20240105"),
              (("2024-01-05T14:30:00", "YYMMDD HHmm"), "240105 1430")],
)
def _format_date(value: Any, fmt: Any) -> str | None:
    if _blank(value):
        return None
    parsed = _parse_iso(value)
    moment = parsed if isinstance(parsed, dt.datetime) else dt.datetime.combine(parsed, dt.time())
    if not isinstance(fmt, str) or not fmt:
        raise FunctionError(f"the format must be text such as \"CCYYMMDD\", got {_show(fmt)}")
    numbers = {"YYYY": f"{moment.year:04d}", "CCYY": f"{moment.year:04d}", "YY": f"{moment.year % 100:02d}",
               "MM": f"{moment.month:02d}", "DD": f"{moment.day:02d}", "HH": f"{moment.hour:02d}",
               "mm": f"{moment.minute:02d}", "ss": f"{moment.second:02d}"}
    return _DATE_TOKENS.sub(lambda match: numbers[match.group()], fmt)


def _utc_now(context: FunctionContext) -> dt.datetime:
    return dt.datetime.fromtimestamp(context.clock.now(), dt.UTC)


@_function(
    "today", "", category="dates", min_args=0, max_args=0, returns="text (an ISO date)",
    summary="Today's date in UTC, from the engine's clock (fixed in `crossdock test`).",
    example="as_of_date = today()", needs_context=True,
)
def _today(context: FunctionContext) -> str:
    return _utc_now(context).date().isoformat()


@_function(
    "now", "", category="dates", min_args=0, max_args=0, returns="text (an ISO datetime)",
    summary="The current time in UTC to the second, with its +00:00 offset, from the engine's clock.",
    example="as_of = now()", needs_context=True,
)
def _now(context: FunctionContext) -> str:
    return _utc_now(context).isoformat(timespec="seconds")


@_function(
    "add_days", "iso_value, days", category="dates", min_args=2, max_args=2,
    returns="text (an ISO date or datetime)",
    summary="The ISO date (or datetime) `days` days later; negative days go back.",
    example="requested_ship_date = add_days(order_date, 2)",
    examples=[(("2024-02-28", 2), "2024-03-01"), (("2024-01-05T10:00:00", -5), "2023-12-31T10:00:00")],
)
def _add_days(value: Any, days: Any) -> str | None:
    if _blank(value):
        return None
    parsed = _parse_iso(value)
    try:
        return (parsed + dt.timedelta(days=_whole(days, "days"))).isoformat()
    except OverflowError:
        raise FunctionError(f"{_show(value)} plus {days} days is out of range") from None


# ---- numbers -----------------------------------------------------------------------------------


@_function(
    "decimal", "value", category="numbers", min_args=1, max_args=1, returns="number",
    summary="The exact number in text, an int or a number; surrounding spaces are ignored. Text that "
    "is not a number (\"12,50\", \"N/A\", NaN) is an error; a float is refused: pass text instead.",
    example="quantity = decimal(PO102)",
    examples=[((" 12.50 ",), Decimal("12.50")), (("3",), Decimal("3")), (("-0.5",), Decimal("-0.5"))],
)
def _decimal(value: Any) -> Decimal | None:
    return None if _blank(value) else _number(value)


@_function(
    "integer", "value", category="numbers", min_args=1, max_args=1, returns="whole number",
    summary="A whole number from text or a number; \"2.0\" is 2, \"2.5\" is an error.",
    example="line_number = integer(PO101)",
    examples=[(("007",), 7), (("2.0",), 2)],
)
def _integer(value: Any) -> int | None:
    return None if _blank(value) else _whole(value, "the value")


@_function(
    "round", "value, places?", category="numbers", min_args=1, max_args=2, returns="number",
    summary="`value` rounded half up (2.345 -> 2.35, -2.345 -> -2.35) to `places` decimal places "
    "(2 when not given); the result always shows that many places.",
    example="amount = round(decimal(PO102) * decimal(PO104))",
    examples=[(("2.345",), Decimal("2.35")), ((Decimal("-2.345"), 2), Decimal("-2.35")),
              ((Decimal("7"), 2), Decimal("7.00")), ((Decimal("12.5"), 0), Decimal("13"))],
)
def _round(value: Any, places: Any = 2) -> Decimal | None:
    if _blank(value):
        return None
    number = _number(value)
    return _quantize(number, _places(places))


@_function(
    "floor", "value", category="numbers", min_args=1, max_args=1, returns="number",
    summary="The whole number at or below `value` (7.9 -> 7, -7.1 -> -8): an allocation that must never "
    "promise more than there is.",
    example="web_quantity = floor(decimal(available) * 0.7)",
    examples=[((Decimal("7.9"),), Decimal("7")), ((Decimal("-7.1"),), Decimal("-8")), (("4",), Decimal("4"))],
)
def _floor(value: Any) -> Decimal | None:
    if _blank(value):
        return None
    return _number(value).to_integral_value(rounding=ROUND_FLOOR)


@_function(
    "ceil", "value", category="numbers", min_args=1, max_args=1, returns="number",
    summary="The whole number at or above `value` (7.1 -> 8, -7.9 -> -7): cartons or pallets needed.",
    example="cartons = ceil(decimal(quantity) / decimal(per_carton))",
    examples=[((Decimal("7.1"),), Decimal("8")), ((Decimal("-7.9"),), Decimal("-7")), (("4",), Decimal("4"))],
)
def _ceil(value: Any) -> Decimal | None:
    if _blank(value):
        return None
    return _number(value).to_integral_value(rounding=ROUND_CEILING)


def _places(places: Any) -> int:
    digits = _whole(places, "places")
    if digits < 0:
        raise FunctionError(f"places must be 0 or more, got {digits}")
    return digits


def _quantize(number: Decimal, digits: int) -> Decimal:
    try:
        return number.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise FunctionError(f"{_show(number)} is too large to show {digits} decimal places") from None


@_binds("round")
def _bind_round(places: Any = 2) -> Callable[[Any], Decimal | None]:
    digits = _places(places)

    def round_(value: Any) -> Decimal | None:
        return None if _blank(value) else _quantize(_number(value), digits)

    return round_


@_function(
    "abs", "value", category="numbers", min_args=1, max_args=1, returns="number",
    summary="The value without its sign.",
    example="quantity = abs(decimal(qty_change))",
    examples=[(("-3.50",), Decimal("3.50"))],
)
def _abs(value: Any) -> Decimal | None:
    return None if _blank(value) else abs(_number(value))


def _extreme(name: str, args: tuple[Any, ...]) -> Any:
    items = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
    present = [item for item in items if not _blank(item)]
    if not present:
        return None
    for item in present:
        if isinstance(item, list | dict):
            raise FunctionError(f"compares numbers or text, got {_show(item)}")
    try:
        numbers = [_number(item) for item in present]
    except FunctionError:
        if all(isinstance(item, str) for item in present):
            return min(present) if name == "min" else max(present)
        raise FunctionError("cannot compare numbers with text that is not a number") from None
    return min(numbers) if name == "min" else max(numbers)


_EXTREME_SUMMARY = (
    "The {which} of the arguments, or of the items of one list argument; missing items are skipped and "
    "nothing left gives null. Numbers and numeric text compare as numbers (the result is a number); "
    "other text compares as text, so ISO dates order correctly."
)


@_function(
    "min", "values...", category="numbers", min_args=1, max_args=None, returns="number or text",
    summary=_EXTREME_SUMMARY.format(which="smallest"),
    example="earliest = min(out.lines.requested_date)",
    examples=[(("10", "9", None), Decimal("9")), ((["2024-03-01", "2024-01-05"],), "2024-01-05")],
)
def _min(*args: Any) -> Any:
    return _extreme("min", args)


@_function(
    "max", "values...", category="numbers", min_args=1, max_args=None, returns="number or text",
    summary=_EXTREME_SUMMARY.format(which="largest"),
    example="weight = max(decimal(TD107), 1)",
    examples=[(("10", "9"), Decimal("10")), (([Decimal("1.5"), 2],), Decimal("2"))],
)
def _max(*args: Any) -> Any:
    return _extreme("max", args)


# ---- text --------------------------------------------------------------------------------------


@_function(
    "string", "value", category="text", min_args=1, max_args=1, returns="text",
    summary="The value as text: numbers with all their digits and never an exponent, true/false as "
    "words. A list or an object is an error.",
    example="PO101 = string(line_number)",
    examples=[((Decimal("1E+2"),), "100"), ((Decimal("0.10"),), "0.10"), ((True,), "true")],
)
def _string(value: Any) -> str | None:
    return None if value is None else _text(value)


@_function(
    "upper", "text", category="text", min_args=1, max_args=1, returns="text",
    summary="The text in upper case.",
    example="country = upper(N404)",
    examples=[(("us",), "US")],
)
def _upper(value: Any) -> str | None:
    return None if value is None else _text(value).upper()


@_function(
    "lower", "text", category="text", min_args=1, max_args=1, returns="text",
    summary="The text in lower case.",
    example="email = lower(PER04)",
    examples=[(("Ops@Example.COM",), "ops@example.com")],
)
def _lower(value: Any) -> str | None:
    return None if value is None else _text(value).lower()


@_function(
    "trim", "text", category="text", min_args=1, max_args=1, returns="text",
    summary="The text without surrounding spaces, tabs and line breaks.",
    example="sku = trim(PO107)",
    examples=[(("  A-100 ",), "A-100")],
)
def _trim(value: Any) -> str | None:
    return None if value is None else _text(value).strip()


@_function(
    "concat", "values...", category="text", min_args=1, max_args=None, returns="text",
    summary="The arguments as text, one after the other; missing ones are skipped (all missing gives "
    "empty text).",
    example='notes = concat(MSG01, " ", MSG02)',
    examples=[(("PO-", None, Decimal("42")), "PO-42")],
)
def _concat(*values: Any) -> str:
    # a list, not a generator: join builds one anyway, and this runs for most messages
    return "".join([value if type(value) is str else _text(value) for value in values if value is not None])


@_function(
    "substring", "text, start, length?", category="text", min_args=2, max_args=3, returns="text",
    summary="`length` characters of the text from position `start` (the first character is 1); "
    "without a length, the rest. Past the end gives what there is, possibly empty text.",
    example="region = substring(postal, 1, 3)",
    examples=[(("ABCDEF", 2, 3), "BCD"), (("ABCDEF", 5), "EF"), (("AB", 4, 2), "")],
)
def _substring(value: Any, start: Any, length: Any = None) -> str | None:
    if value is None:
        return None
    text = _text(value)
    return text[_slice(start, length)]


def _slice(start: Any, length: Any) -> slice:
    """The characters `substring` takes, from its 1-based start and optional length."""
    first = _whole(start, "start")
    if first < 1:
        raise FunctionError(f"start counts from 1, got {first}")
    if length is None:
        return slice(first - 1, None)
    count = _whole(length, "length")
    if count < 0:
        raise FunctionError(f"length must be 0 or more, got {count}")
    return slice(first - 1, first - 1 + count)


@_binds("substring")
def _bind_substring(start: Any, length: Any = None) -> Callable[[Any], str | None]:
    part = _slice(start, length)

    def substring(value: Any) -> str | None:
        return None if value is None else _text(value)[part]

    return substring


def _pad(value: Any, width: Any, char: Any, left: bool) -> str | None:
    if value is None:
        return None
    text = _text(value)
    size, fill = _padding(width, char)
    return text.rjust(size, fill) if left else text.ljust(size, fill)


def _padding(width: Any, char: Any) -> tuple[int, str]:
    size = _whole(width, "width")
    fill = _required_text(char, "the padding character")
    if len(fill) != 1:
        raise FunctionError(f"the padding character must be one character, got {_show(fill)}")
    return size, fill


def _bind_pad(left: bool) -> Callable[..., Callable[[Any], str | None]]:
    def bind(width: Any, char: Any = " ") -> Callable[[Any], str | None]:
        size, fill = _padding(width, char)

        def pad(value: Any) -> str | None:
            if value is None:
                return None
            text = _text(value)
            return text.rjust(size, fill) if left else text.ljust(size, fill)

        return pad

    return bind


@_function(
    "pad_left", "text, width, char?", category="text", min_args=2, max_args=3, returns="text",
    summary="The text with `char` (a space when not given) added on the left up to `width` "
    "characters; longer text is returned whole, never cut.",
    example='ISA13 = pad_left(string(control_number), 9, "0")',
    examples=[(("42", 5, "0"), "00042"), (("123456", 3), "123456")],
)
def _pad_left(value: Any, width: Any, char: Any = " ") -> str | None:
    return _pad(value, width, char, left=True)


@_function(
    "pad_right", "text, width, char?", category="text", min_args=2, max_args=3, returns="text",
    summary="The text with `char` (a space when not given) added on the right up to `width` "
    "characters; longer text is returned whole, never cut.",
    example="ISA06 = pad_right(sender_id, 15)",
    examples=[(("ACME", 8), "ACME    ")],
)
def _pad_right(value: Any, width: Any, char: Any = " ") -> str | None:
    return _pad(value, width, char, left=False)


_binds("pad_left")(_bind_pad(left=True))
_binds("pad_right")(_bind_pad(left=False))


@_function(
    "replace", "text, old, new", category="text", min_args=3, max_args=3, returns="text",
    summary="The text with every occurrence of `old` replaced by `new`.",
    example='quantity = decimal(replace(qty_text, ",", ""))',
    examples=[(("1,234.50", ",", ""), "1234.50")],
)
def _replace(value: Any, old: Any, new: Any) -> str | None:
    if value is None:
        return None
    target = _required_text(old, "the text to replace")
    if not target:
        raise FunctionError("the text to replace is empty")
    return _text(value).replace(target, _required_text(new, "the replacement"))


@_function(
    "split", "text, separator", category="text", min_args=2, max_args=2, returns="list of text",
    summary="The pieces of the text between separators; empty text gives an empty list.",
    example='tags = split(product.tags, ",")',
    examples=[(("a,b,,c", ","), ["a", "b", "", "c"]), (("", ","), [])],
)
def _split(value: Any, separator: Any) -> list[str] | None:
    if value is None:
        return None
    sep = _required_text(separator, "the separator")
    if not sep:
        raise FunctionError("the separator is empty")
    text = _text(value)
    return text.split(sep) if text else []


@_function(
    "join", "list, separator", category="text", min_args=2, max_args=2, returns="text",
    summary="The items of the list as text with the separator between them; missing items are skipped.",
    example='skus = join(out.lines.sku, ",")',
    examples=[((["a", None, Decimal("2.50")], "-"), "a-2.50")],
)
def _join(value: Any, separator: Any) -> str | None:
    if value is None:
        return None
    sep = _required_text(separator, "the separator")
    return sep.join(_text(item) for item in _items(value) if item is not None)


@_function(
    "length", "value", category="text", min_args=1, max_args=1, returns="whole number",
    summary="The number of characters of text, or of items of a list or an object.",
    example="keep only when length(sku) > 0",
    examples=[(("Zoë",), 3), ((["a", "b"],), 2)],
)
def _length(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, list | dict):
        return len(value)
    return len(_text(value))


@_function(
    "contains", "text_or_list, part", category="text", min_args=2, max_args=2, returns="true or false",
    summary="For text: whether `part` occurs in it. For a list: whether one of its items equals `part`.",
    example='when contains(upper(notes), "RUSH")',
    examples=[(("EXPRESS RUSH", "RUSH"), True), ((["DAL", "ATL"], "SEA"), False)],
)
def _contains(value: Any, part: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, list):
        return part in value
    return _required_text(part, "the part to look for") in _text(value)


@_function(
    "starts_with", "text, prefix", category="text", min_args=2, max_args=2, returns="true or false",
    summary="Whether the text begins with `prefix`.",
    example='keep only when starts_with(sku, "ACME-")',
    examples=[(("ACME-100", "ACME-"), True)],
)
def _starts_with(value: Any, prefix: Any) -> bool | None:
    if value is None:
        return None
    return _text(value).startswith(_required_text(prefix, "the prefix"))


@_function(
    "ends_with", "text, suffix", category="text", min_args=2, max_args=2, returns="true or false",
    summary="Whether the text ends with `suffix`.",
    example='when ends_with(file_name, ".x12")',
    examples=[(("order.x12", ".json"), False)],
)
def _ends_with(value: Any, suffix: Any) -> bool | None:
    if value is None:
        return None
    return _text(value).endswith(_required_text(suffix, "the suffix"))


@_function(
    "coalesce", "values...", category="text", min_args=1, max_args=None, returns="any",
    summary="The first argument that is present: not null, not empty text, not an empty list; null "
    "when none is.",
    example='ship_to.name = coalesce(N1[N101 = "ST"].N102, N1[N101 = "BT"].N102)',
    examples=[((None, "", "DAL", "ATL"), "DAL"), ((None, []), None)],
)
def _coalesce(*values: Any) -> Any:
    return next((value for value in values if not _is_missing(value)), None)


# ---- lists (aggregates over a loop) ------------------------------------------------------------


@_function(
    "sum", "list", category="lists", min_args=1, max_args=1, returns="number",
    summary="The exact sum of the items (numbers or numeric text); missing items are skipped and an "
    "empty list sums to 0. A single value counts as a list of one.",
    example="total = sum(out.lines.amount)",
    examples=[((["1.10", Decimal("2.20"), None],), Decimal("3.30")), (([],), Decimal("0"))],
)
def _sum(value: Any) -> Decimal | None:
    if value is None:
        return None
    return sum((_number(item) for item in _items(value) if not _blank(item)), Decimal(0))


@_function(
    "count", "list", category="lists", min_args=1, max_args=1, returns="whole number",
    summary="How many items of the list are not null; a missing list counts 0 (for totals such as "
    "CTT01), a single value 1.",
    example="CTT01 = count(out.lines)",
    examples=[((["a", None, "b"],), 2), ((None,), 0)],
)
def _count(value: Any) -> int:
    if value is None:
        return 0
    return sum(1 for item in _items(value) if item is not None)


@_function(
    "first", "list", category="lists", min_args=1, max_args=1, returns="any",
    summary="The first item of the list; null for an empty list. A single value is returned as is.",
    example='ship_date = first(DTM[DTM01 = "011"].DTM02)',
    examples=[((["a", "b"],), "a"), (([],), None)],
)
def _first(value: Any) -> Any:
    items = _items(value)
    return items[0] if items else None


@_function(
    "last", "list", category="lists", min_args=1, max_args=1, returns="any",
    summary="The last item of the list; null for an empty list. A single value is returned as is.",
    example="last_line = last(out.lines.line_number)",
    examples=[((["a", "b"],), "b")],
)
def _last(value: Any) -> Any:
    items = _items(value)
    return items[-1] if items else None


# ---- other -------------------------------------------------------------------------------------


@_function(
    "uuid", "", category="other", min_args=0, max_args=0, returns="text",
    summary="A new random UUID (version 4) in its 36-character text form.",
    example="message_id = uuid()", needs_context=True,
)
def _uuid(context: FunctionContext) -> str:
    return str(context.uuid4())


def _truthy(value: Any) -> bool:
    # The rule of conditions in the route language: true and false are themselves; missing is false.
    if isinstance(value, bool):
        return value
    return not _is_missing(value)


@_function(
    "if", "condition, then, else?", category="other", min_args=2, max_args=3, returns="any",
    summary="`then` when the condition holds, otherwise `else` (null when not given). Only the "
    "chosen branch is evaluated. A condition holds unless it is false or missing (null, empty text, "
    "an empty list); 0 holds.",
    example='unit = if(PO103 = "CA", "case", "each")',
    examples=[((True, "case", "each"), "case"), (("", "x"), None), ((Decimal(0), "yes", "no"), "yes")],
    lazy=True,
)
def _if(
    condition: Callable[[], Any], then: Callable[[], Any], otherwise: Callable[[], Any] | None = None
) -> Any:
    if _truthy(condition()):
        return then()
    return otherwise() if otherwise is not None else None


# ---- documentation -----------------------------------------------------------------------------

_CATEGORY_TITLES = {
    "dates": "Dates",
    "numbers": "Numbers",
    "text": "Text",
    "lists": "Lists (aggregates over a loop)",
    "other": "Other",
}


def literal(value: Any) -> str:
    """`value` written as the route language writes literals (lists as [...], for the docs)."""
    if isinstance(value, list):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    return _show(value)


def render_function_docs() -> str:
    """The text of docs/functions.md, rendered from :data:`FUNCTIONS`."""
    out = [
        "# Map function library",
        "",
        "<!-- Generated by `python -m crossdock.engine.mapping.functions` from",
        "     crossdock/engine/mapping/functions.py; do not edit by hand. -->",
        "",
        "Maps call only these functions; no other code runs from a route file.",
        "",
        "- **Missing input propagates**: when the main argument is missing (null) the result is null,",
        "  so `date(DTM02, \"CCYYMMDD\") default \"2024-01-01\"` works. Conversions (`date`, `datetime`,",
        "  `decimal`, `integer`) treat blank text as missing too.",
        "- **Numbers are exact decimals**. Numeric text such as \"12.50\" is accepted wherever a number",
        "  is expected. Results shown without quotes are numbers, with quotes text.",
        "- **Dates are ISO 8601 text**: \"2024-01-05\", \"2024-01-05T14:30:00\".",
        "- In the examples, `[...]` stands for a list such as a path over a loop produces",
        "  (`out.lines.amount`); the route language has no list literal.",
        "",
    ]
    for category in CATEGORIES:
        out += [f"## {_CATEGORY_TITLES[category]}", ""]
        for spec in sorted((s for s in FUNCTIONS.values() if s.category == category), key=lambda s: s.name):
            out += [f"### `{spec.signature}`", "", spec.summary, "", f"Returns: {spec.returns}.", "",
                    "In a map:", "", "```", spec.example, "```", ""]
            if spec.examples:
                out += ["| call | result |", "| --- | --- |"]
                for example in spec.examples:
                    call = f"{spec.name}({', '.join(literal(arg) for arg in example.args)})"
                    out.append(f"| `{call}` | `{literal(example.result)}` |")
                out.append("")
    return "\n".join(out)


def main() -> int:
    """Write docs/functions.md from the registry."""
    DOCS_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOCS_PATH.write_text(render_function_docs(), encoding="utf-8")
    print(f"wrote {DOCS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
