"""The map language's function library: exact results, None propagation, errors naming their value."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from crossdock.engine.clock import ManualClock
from crossdock.engine.mapping.functions import (
    DOCS_PATH,
    FUNCTIONS,
    Example,
    FunctionContext,
    FunctionError,
    render_function_docs,
)

FIXED_UUID = uuid.UUID("12345678-1234-4234-8234-123456789abc")


def context(start: float = 1_700_000_000.0) -> FunctionContext:  # 2023-11-14T22:13:20Z
    return FunctionContext(clock=ManualClock(start), uuid4=lambda: FIXED_UUID)


def call(name: str, *args: Any, ctx: FunctionContext | None = None) -> Any:
    """Call a function the way the map compiler does (see the calling convention)."""
    spec = FUNCTIONS[name]
    if spec.lazy:
        return spec.impl(*[(lambda value=arg: value) for arg in args])
    if spec.needs_context:
        return spec.impl(ctx or context(), *args)
    return spec.impl(*args)


def error_of(name: str, *args: Any) -> str:
    with pytest.raises(FunctionError) as excinfo:
        call(name, *args)
    return excinfo.value.message


def same(result: Any, expected: Any) -> bool:
    """Equal, of the same type, and for Decimal with the same digits (12.50 is not 12.5)."""
    if type(result) is not type(expected):
        return False
    if isinstance(expected, list):
        return len(result) == len(expected) and all(same(r, e) for r, e in zip(result, expected, strict=True))
    return str(result) == str(expected) if isinstance(expected, Decimal) else result == expected


EXAMPLES = [(spec.name, example) for spec in FUNCTIONS.values() for example in spec.examples]


@pytest.mark.parametrize(("name", "example"), EXAMPLES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(EXAMPLES)])
def test_every_documented_example_holds(name: str, example: Example) -> None:
    result = call(name, *example.args)
    assert same(result, example.result), f"{name}{example.args} gave {result!r}, docs say {example.result!r}"


def test_committed_docs_match_the_registry() -> None:
    regenerate = ".venv/bin/python -m crossdock.engine.mapping.functions"
    assert DOCS_PATH.read_text(encoding="utf-8") == render_function_docs(), (
        f"docs/functions.md is out of date; regenerate with: {regenerate}"
    )


def test_the_library_is_complete_and_declared_consistently() -> None:
    expected = {
        "date", "datetime", "format_date", "today", "now", "add_days",
        "decimal", "integer", "round", "floor", "ceil", "abs", "min", "max",
        "string", "upper", "lower", "trim", "concat", "substring", "pad_left", "pad_right", "replace",
        "split", "join", "length", "contains", "starts_with", "ends_with", "coalesce",
        "sum", "count", "first", "last", "uuid", "if",
    }
    assert set(FUNCTIONS) == expected
    for spec in FUNCTIONS.values():
        assert spec.max_args is None or spec.max_args >= spec.min_args, spec.name
        assert f"{spec.name}(" in spec.example and spec.summary and spec.returns, spec.name
    assert [n for n, s in FUNCTIONS.items() if s.lazy] == ["if"]
    assert sorted(n for n, s in FUNCTIONS.items() if s.needs_context) == ["now", "today", "uuid"]


# ---- None propagation ---------------------------------------------------------------------------

PROPAGATING = [
    ("date", ("CCYYMMDD",)), ("datetime", ("CCYYMMDD",)), ("format_date", ("CCYYMMDD",)), ("add_days", (1,)),
    ("decimal", ()), ("integer", ()), ("round", ()), ("floor", ()), ("ceil", ()), ("abs", ()), ("string", ()),
    ("upper", ()),
    ("lower", ()), ("trim", ()), ("substring", (1,)), ("pad_left", (3,)), ("pad_right", (3,)),
    ("replace", ("a", "b")), ("split", (",",)), ("join", (",",)), ("length", ()), ("contains", ("a",)),
    ("starts_with", ("a",)), ("ends_with", ("a",)), ("sum", ()), ("first", ()), ("last", ()),
    ("min", ()), ("max", ()), ("coalesce", ()),
]


@pytest.mark.parametrize(("name", "rest"), PROPAGATING)
def test_missing_main_argument_gives_none(name: str, rest: tuple[Any, ...]) -> None:
    assert call(name, None, *rest) is None


@pytest.mark.parametrize("name", ["date", "datetime", "decimal", "integer", "round", "abs"])
def test_conversions_treat_blank_text_as_missing(name: str) -> None:
    assert call(name, "   ") is None


def test_count_of_a_missing_list_is_zero() -> None:
    assert call("count", None) == 0


# ---- dates --------------------------------------------------------------------------------------


def test_date_formats_read_every_token() -> None:
    assert call("date", "2024-01-05", "YYYY-MM-DD") == "2024-01-05"
    assert call("date", "20240105", "CCYYMMDD") == "2024-01-05"
    assert call("date", 20240105, "YYYYMMDD") == "2024-01-05"
    assert call("date", "240105 1430", "YYMMDD HHmm") == "2024-01-05"
    assert call("datetime", "05.01.2024 14:30:59", "DD.MM.YYYY HH:mm:ss") == "2024-01-05T14:30:59"


def test_two_digit_years_pivot_at_69() -> None:
    assert call("date", "680101", "YYMMDD") == "2068-01-01"
    assert call("date", "690101", "YYMMDD") == "1969-01-01"


def test_impossible_dates_name_the_value() -> None:
    message = error_of("date", "20240230", "CCYYMMDD")
    assert '"20240230" is not a valid date' in message and "day is out of range" in message


def test_text_not_matching_the_format_names_both() -> None:
    assert error_of("date", "2024-01-05", "CCYYMMDD") == '"2024-01-05" does not match the format "CCYYMMDD"'
    assert error_of("date", "2024015", "CCYYMMDD") == '"2024015" does not match the format "CCYYMMDD"'


def test_bad_formats_are_errors() -> None:
    assert "needs a year (YYYY, CCYY or YY), MM and DD" in error_of("date", "202401", "CCYYMM")
    assert "gives the year twice" in error_of("date", "2024010524", "CCYYMMDDYY")
    assert "the format must be text" in error_of("date", "20240105", Decimal(8))


def test_date_without_format_reads_iso_and_rejects_anything_else() -> None:
    assert call("date", "2024-01-05T23:59:00+05:00") == "2024-01-05"
    assert '"01/05/2024" is not an ISO 8601 date' in error_of("date", "01/05/2024")


def test_datetime_without_format_keeps_the_offset() -> None:
    assert call("datetime", "2024-01-05T10:00:00+02:00") == "2024-01-05T10:00:00+02:00"
    assert call("datetime", "2024-01-05T10:00:00Z") == "2024-01-05T10:00:00+00:00"


def test_format_date_writes_x12_dates_and_times() -> None:
    assert call("format_date", "2024-01-05", "CCYYMMDD") == "20240105"
    assert call("format_date", "2024-01-05", "HHmmss") == "000000"
    assert call("format_date", "2024-01-05T07:08:09", "YYYY-MM-DD HH:mm:ss") == "2024-01-05 07:08:09"
    assert "is not an ISO 8601 date" in error_of("format_date", "20240105x", "CCYYMMDD")


def test_today_and_now_come_from_the_context_clock() -> None:
    ctx = context()
    assert call("today", ctx=ctx) == "2023-11-14"
    assert call("now", ctx=ctx) == "2023-11-14T22:13:20+00:00"
    ctx.clock.advance(2 * 3600)  # type: ignore[attr-defined]
    assert call("today", ctx=ctx) == "2023-11-15"
    assert call("now", ctx=ctx) == "2023-11-15T00:13:20+00:00"


def test_add_days_counts_leap_days_and_takes_numeric_text() -> None:
    assert call("add_days", "2024-02-28", "1") == "2024-02-29"
    assert call("add_days", "2023-02-28", Decimal(1)) == "2023-03-01"
    assert call("add_days", "2024-03-01", -1) == "2024-02-29"
    assert error_of("add_days", "2024-03-01", "1.5") == "days must be a whole number, got 1.5"


# ---- numbers ------------------------------------------------------------------------------------


def test_decimal_is_exact() -> None:
    result = call("decimal", " 0.10 ")
    assert isinstance(result, Decimal) and str(result) == "0.10"
    assert call("decimal", 3) == Decimal(3)
    assert call("decimal", "0.1") + call("decimal", "0.2") == Decimal("0.3")


def test_decimal_refuses_floats_with_advice() -> None:
    message = error_of("decimal", 0.1)
    assert "float 0.1" in message and 'pass text such as "0.1"' in message


@pytest.mark.parametrize("text", ["abc", "NaN", "Infinity", "1_000", "12.5.0", "--1"])
def test_decimal_rejects_text_that_is_not_a_number(text: str) -> None:
    assert error_of("decimal", text) == f'"{text}" is not a number'


def test_decimal_hints_at_thousands_separators() -> None:
    message = error_of("decimal", "1,234.50")
    assert message == '"1,234.50" is not a number; remove thousands separators first with replace()'


def test_decimal_rejects_booleans_and_lists() -> None:
    assert error_of("decimal", True) == "expected a number, got true"
    assert error_of("decimal", ["1"]) == "expected a number, got a list"


def test_integer_needs_a_whole_number() -> None:
    assert call("integer", Decimal("4.000")) == 4
    assert error_of("integer", "2.5") == "the value must be a whole number, got 2.5"


def test_round_is_half_up_and_keeps_the_places() -> None:
    assert str(call("round", "2.344")) == "2.34"
    assert str(call("round", "2.345")) == "2.35"
    assert str(call("round", Decimal("0.5"), 0)) == "1"
    assert str(call("round", Decimal("-0.5"), 0)) == "-1"
    assert str(call("round", "1.23456", "3")) == "1.235"
    assert error_of("round", "1.5", -1) == "places must be 0 or more, got -1"
    assert "too large to show 2 decimal places" in error_of("round", Decimal("1E+30"), 2)


def test_abs_drops_the_sign() -> None:
    assert str(call("abs", Decimal("-0.50"))) == "0.50"


def test_min_and_max_over_arguments_or_a_list() -> None:
    assert call("max", "9", "10", None, "") == Decimal(10)
    assert call("min", [Decimal("2.5"), 3, "2.50"]) == Decimal("2.5")
    assert call("max", ["2024-01-05", "2024-03-01"]) == "2024-03-01"
    assert call("min", [None, ""]) is None
    assert call("max", "10", "abc") == "abc"  # not all numeric text: compared as text
    assert error_of("max", Decimal(10), "abc") == "cannot compare numbers with text that is not a number"
    assert error_of("min", [["a"]]) == "compares numbers or text, got a list"


# ---- text ---------------------------------------------------------------------------------------


def test_string_writes_numbers_without_exponent() -> None:
    assert call("string", Decimal("1E-7")) == "0.0000001"
    assert call("string", 42) == "42"
    assert call("string", False) == "false"
    assert error_of("string", {"a": 1}) == "cannot turn an object into text"


def test_case_and_trim_accept_numbers_as_text() -> None:
    assert call("upper", "abc") == "ABC"
    assert call("lower", "ÄBC") == "äbc"
    assert call("trim", "\t x \n") == "x"
    assert call("trim", Decimal("1.50")) == "1.50"


def test_concat_skips_missing_values() -> None:
    assert call("concat", "A", None, "-", 7, Decimal("0.5")) == "A-70.5"
    assert call("concat", None, None) == ""


def test_substring_counts_from_one() -> None:
    assert call("substring", "CCYYMMDD", 5, 2) == "MM"
    assert call("substring", "abc", 1, 0) == ""
    assert error_of("substring", "abc", 0) == "start counts from 1, got 0"
    assert error_of("substring", "abc", 1, -2) == "length must be 0 or more, got -2"
    assert error_of("substring", "abc", None) == "start is missing"


def test_padding_never_cuts_and_takes_one_character() -> None:
    assert call("pad_left", Decimal(7), 3, "0") == "007"
    assert call("pad_right", "AB", 4, ".") == "AB.."
    assert call("pad_left", "ABCD", 2) == "ABCD"
    assert error_of("pad_left", "1", 3, "00") == 'the padding character must be one character, got "00"'
    assert error_of("pad_right", "1", "x") == 'width: "x" is not a number'


def test_replace_split_and_join() -> None:
    assert call("replace", "a-b-c", "-", "") == "abc"
    assert error_of("replace", "abc", "", "x") == "the text to replace is empty"
    assert error_of("replace", "abc", "a", None) == "the replacement is missing"
    assert call("split", "A|B", "|") == ["A", "B"]
    assert error_of("split", "A|B", "") == "the separator is empty"
    assert call("join", ["A", None, Decimal("1.0")], ", ") == "A, 1.0"
    assert call("join", "solo", ",") == "solo"


def test_length_contains_starts_and_ends() -> None:
    assert call("length", "") == 0
    assert call("length", Decimal("12.50")) == 5
    assert call("contains", "RUSH ORDER", "RUSH") is True
    assert call("contains", ["DAL", "ATL"], "ATL") is True
    assert call("starts_with", "ACME-1", "ACME") is True
    assert call("ends_with", "ACME-1", "ACME") is False


def test_coalesce_skips_null_empty_text_and_empty_lists() -> None:
    assert call("coalesce", None, "", [], "x", "y") == "x"
    assert call("coalesce", None, Decimal(0)) == Decimal(0)
    assert call("coalesce", None, "") is None


# ---- lists --------------------------------------------------------------------------------------


def test_sum_is_exact_and_skips_missing_items() -> None:
    result = call("sum", ["0.10", Decimal("0.20"), None, "", 1])
    assert isinstance(result, Decimal) and str(result) == "1.30"
    assert call("sum", Decimal("4.5")) == Decimal("4.5")
    assert error_of("sum", ["1", "two"]) == '"two" is not a number'


def test_count_first_and_last() -> None:
    assert call("count", [1, None, 0, ""]) == 3
    assert call("count", "single") == 1
    assert call("first", []) is None
    assert call("last", ["a", "b", "c"]) == "c"
    assert call("first", "only") == "only"


# ---- other --------------------------------------------------------------------------------------


def test_uuid_comes_from_the_context() -> None:
    assert call("uuid") == "12345678-1234-4234-8234-123456789abc"
    real = FUNCTIONS["uuid"].impl(FunctionContext())
    assert uuid.UUID(real).version == 4


def test_if_evaluates_only_the_chosen_branch() -> None:
    def boom() -> Any:
        raise AssertionError("the branch not taken was evaluated")

    impl = FUNCTIONS["if"].impl
    assert impl(lambda: True, lambda: "then", boom) == "then"
    assert impl(lambda: None, boom, lambda: "else") == "else"
    assert impl(lambda: False, boom) is None
    assert impl(lambda: [], boom, lambda: Decimal(1)) == Decimal(1)
