"""The expression language: expressions compiled from route text and evaluated with exact results."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from crossdock.canonical import Unit
from crossdock.dsl import ast
from crossdock.dsl.diagnostics import DiagnosticBag
from crossdock.dsl.parser import parse_text
from crossdock.engine.clock import ManualClock
from crossdock.engine.mapping.expressions import (
    CompileEnv,
    EvaluationError,
    Scope,
    compile_expr,
    is_missing,
    number_text,
    to_number,
    truthy,
)
from crossdock.engine.mapping.functions import FUNCTIONS, FunctionContext

FIXED_UUID = uuid.UUID("12345678-1234-4234-8234-123456789abc")

TABLES: dict[str, dict[Any, Any]] = {
    "units": {"EA": "each", "CS": "case"},
    "warehouses": {"1": "DAL", Decimal(2): "RNO"},
}

ORDER: dict[str, Any] = {
    "number": "1001",
    "currency": "usd",
    "flag": True,
    "blank": "",
    "nothing": None,
    "empty": [],
    "zero": 0,
    "customer": {"name": "Ana", "address": {"city": "Austin"}, "tags": ["vip", "b2b"]},
    "addresses": [
        {"kind": "bill", "city": "Dallas"},
        {"kind": "ship", "city": "Austin"},
        {"kind": "ship", "city": "Reno"},
    ],
    "line_items": [
        {"sku": "A-1", "quantity": 3, "price": "4.10", "unit": "EA", "unit price": "4.10"},
        {"sku": "B-2", "quantity": "2", "price": Decimal("55.00"), "unit": "CS"},
        {"quantity": 1, "price": "0.333"},
    ],
    "orders": [
        {"lines": [{"sku": "X"}, {"sku": "Y"}]},
        {"lines": [{"sku": "Z"}]},
    ],
}


def compile_text(expression: str, *, allow_message: bool = True) -> tuple[Any, DiagnosticBag]:
    """Compile `expression` as the right side of a map line; returns the getter and the diagnostics."""
    module, diagnostics = parse_text(f'map "m"\n  from json\n  to json\n  value = {expression}\nend\n', "m.route")
    assert module is not None, diagnostics
    (definition,) = module.definitions
    assert isinstance(definition, ast.MapDef)
    (assign,) = definition.items
    assert isinstance(assign, ast.Assign)
    bag = DiagnosticBag()
    getter = compile_expr(assign.expr, CompileEnv(bag, tables=TABLES, allow_message=allow_message))
    return getter, bag


def functions() -> FunctionContext:
    return FunctionContext(clock=ManualClock(1_767_225_600.0), uuid4=lambda: FIXED_UUID)  # 2026-01-01T00:00Z


def evaluate(
    expression: str,
    document: Any = None,
    *,
    current: Any = None,
    out: dict[str, Any] | None = None,
    index: int | None = None,
    count: int | None = None,
    message: dict[str, Any] | None = None,
    allow_message: bool = True,
) -> Any:
    """The value of `expression` on `document` (ORDER when not given)."""
    getter, bag = compile_text(expression, allow_message=allow_message)
    assert not bag.items, [str(d) for d in bag.items]
    document = ORDER if document is None else document
    scope = Scope(document, document if current is None else current, out or {}, functions(), index, count, message)
    return getter(scope)


def error_of(expression: str, document: Any = None, **scope: Any) -> str:
    with pytest.raises(EvaluationError) as excinfo:
        evaluate(expression, document, **scope)
    return str(excinfo.value)


def codes_of(expression: str) -> list[str]:
    return [d.code for d in compile_text(expression)[1].items]


def exact(value: Any, digits: str) -> bool:
    """A Decimal with exactly these digits (12.30 is not 12.3)."""
    return type(value) is Decimal and str(value) == digits


# ---- paths --------------------------------------------------------------------------------------


def test_dotted_path_reads_nested_objects() -> None:
    assert evaluate("customer.address.city") == "Austin"
    assert evaluate("customer.name") == "Ana"


def test_a_missing_field_or_a_step_into_text_is_missing() -> None:
    assert evaluate("customer.phone") is None
    assert evaluate("customer.name.first") is None
    assert evaluate("shipping.address.city") is None


def test_a_path_through_a_list_maps_over_it_and_skips_elements_without_the_field() -> None:
    assert evaluate("line_items.sku") == ["A-1", "B-2"]
    assert evaluate("addresses.city") == ["Dallas", "Austin", "Reno"]


def test_lists_met_on_the_way_are_flattened_into_one_list() -> None:
    assert evaluate("orders.lines.sku") == ["X", "Y", "Z"]
    assert evaluate("customer.tags") == ["vip", "b2b"]


def test_condition_qualifier_keeps_the_matching_elements() -> None:
    assert evaluate('addresses[kind = "ship"].city') == ["Austin", "Reno"]
    assert evaluate('addresses[kind = "none"].city') == []


def test_condition_qualifier_on_a_single_object_gives_it_or_missing() -> None:
    assert evaluate('customer[name = "Ana"].address.city') == "Austin"
    assert evaluate('customer[name = "Bo"].address.city') is None


def test_index_qualifier_counts_from_zero_and_past_the_end_is_missing() -> None:
    assert evaluate("addresses[0].city") == "Dallas"
    assert evaluate("addresses[2].city") == "Reno"
    assert evaluate("addresses[3].city") is None
    assert evaluate('addresses[kind = "ship"].city[0]') == "Austin"


def test_index_zero_of_a_single_value_is_the_value() -> None:
    assert evaluate("customer[0].name") == "Ana"
    assert evaluate("customer[1].name") is None


def test_string_qualifier_reads_a_field_whose_name_is_not_a_word() -> None:
    assert evaluate('item["unit price"]', {"item": {"unit price": "4.10"}}) == "4.10"
    assert evaluate('line_items["unit price"]') == ["4.10"]


def test_negative_or_fractional_index_is_a_compile_error() -> None:
    assert codes_of("addresses[-1].city") == ["MAP012"]
    assert codes_of("addresses[1.5].city") == ["MAP012"]


def test_condition_sees_the_element_as_the_current_value() -> None:
    assert evaluate("line_items[decimal(quantity) > 1].sku") == ["A-1", "B-2"]


# ---- JSONPath -----------------------------------------------------------------------------------


def test_jsonpath_to_one_value_gives_the_value() -> None:
    assert evaluate("$.customer.address.city") == "Austin"


def test_jsonpath_that_can_match_several_gives_a_list() -> None:
    assert evaluate("$.line_items[*].sku") == ["A-1", "B-2"]
    assert evaluate("$..city") == ["Austin", "Dallas", "Austin", "Reno"]


def test_jsonpath_without_a_match_is_missing() -> None:
    assert evaluate("$.customer.phone") is None
    assert evaluate("$.nowhere[*].sku") is None


def test_jsonpath_starts_at_the_document_even_inside_a_loop() -> None:
    assert evaluate("$.number", current=ORDER["line_items"][0]) == "1001"


def test_invalid_jsonpath_is_a_compile_error() -> None:
    assert codes_of("$[?]") == ["MAP010"]


# ---- arithmetic ---------------------------------------------------------------------------------


def test_arithmetic_is_exact_with_numbers_and_numeric_text() -> None:
    assert exact(evaluate('"4.10" * 3'), "12.30")
    assert exact(evaluate("line_items[0].price * line_items[0].quantity"), "12.30")
    assert exact(evaluate('" 2 " + 1'), "3")
    assert exact(evaluate("10 - 2.5"), "7.5")
    assert exact(evaluate("1 / 4"), "0.25")
    assert exact(evaluate('"1e2" * 1'), "1E+2")
    assert exact(evaluate('"1e2" + 0'), "100")


def test_division_keeps_28_significant_digits_and_round_makes_money() -> None:
    assert exact(evaluate("1 / 3"), "0.3333333333333333333333333333")
    assert exact(evaluate("round(10 / 3)"), "3.33")


def test_arithmetic_follows_precedence_and_parentheses() -> None:
    assert exact(evaluate("2 + 3 * 4"), "14")
    assert exact(evaluate("(2 + 3) * 4"), "20")
    assert exact(evaluate("-2 * 3"), "-6")


def test_money_sums_keep_their_cents() -> None:
    assert exact(evaluate('"0.10" + "0.20"'), "0.30")
    assert exact(evaluate('sum(line_items.price) + "0.00"'), "59.433")


def test_int_counts_mix_with_decimals() -> None:
    assert exact(evaluate("loop.index + 1", index=2), "3")
    assert exact(evaluate("zero * 5"), "0")


@pytest.mark.parametrize("expression", ["nothing * 2", "2 + blank", "empty - 1", "missing_field / 2", "-nothing"])
def test_arithmetic_with_a_missing_operand_is_missing(expression: str) -> None:
    assert evaluate(expression) is None


def test_arithmetic_on_text_that_is_not_a_number_names_the_value() -> None:
    assert error_of('"abc" * 2') == "'*' needs numbers, got text 'abc'"
    assert error_of('2 - customer') == "'-' needs numbers, got an object"
    assert error_of("flag * 2") == "'*' needs numbers, got true"
    assert error_of('-"x"') == "'-' needs a number, got text 'x'"


def test_plus_does_not_join_text() -> None:
    assert error_of('"WEB-" + number') == "'+' needs numbers, got text 'WEB-'; use concat() to join text"


@pytest.mark.parametrize("text", ["1_000", "NaN", "Infinity", "12,50", "١٢"])
def test_text_decimal_would_read_is_not_a_number(text: str) -> None:
    assert error_of(f'"{text}" * 1') == f"'*' needs numbers, got text {text!r}"


def test_division_by_zero_is_an_error() -> None:
    assert error_of("1 / 0") == "division by zero (1 / 0)"
    assert error_of('"0" / zero') == "division by zero (0 / 0)"


def test_overflow_is_an_error() -> None:
    assert "the result is too large" in error_of('"9e999999999" * "9e999999999"')


# ---- comparisons --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ('"10.0" = 10', True),
        ("line_items[0].quantity = 3", True),
        ("line_items[1].quantity = 2.00", True),
        ('line_items[1].quantity = "2.00"', False),  # text with text compares as text
        ('"10" = "10.0"', False),
        ('"DAL" = "dal"', False),
        ('"DAL" = "DAL"', True),
        ('currency != "USD"', True),
        ('true = "true"', False),
        ("flag = true", True),
        ("nothing = null", True),
        ("missing_field = null", True),
        ('nothing = ""', False),
        ('nothing != "x"', True),
        ("customer.tags = customer.tags", True),
    ],
)
def test_equality(expression: str, result: bool) -> None:
    assert evaluate(expression) is result


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ('"9" < "10"', True),
        ('"9" < 10', True),
        ("line_items[1].price >= 55", True),
        ('"2024-01-05" < "2024-02-01"', True),
        ('"b" > "a"', True),
        ("10 <= 9.99", False),
        ("nothing > 1", False),
        ("nothing < 1", False),
        ('blank < "a"', False),
    ],
)
def test_ordering(expression: str, result: bool) -> None:
    assert evaluate(expression) is result


def test_text_subclasses_compare_as_text() -> None:
    assert evaluate('unit = "each"', {"unit": Unit.EACH}) is True
    assert evaluate('unit in ("case", "each")', {"unit": Unit.EACH}) is True


def test_ordering_text_with_a_number_is_an_error() -> None:
    assert error_of('"abc" < 5') == "cannot compare text 'abc' with the number 5 using '<'"
    assert error_of("flag > 0") == "cannot compare true with the number 0 using '>'"


# ---- conditions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ('zero and "x"', True),
        ("blank or nothing", False),
        ("empty or flag", True),
        ('not blank', True),
        ("not zero", False),
        ('not "false"', False),
        ("not (flag and nothing)", True),
        ("flag and not empty", True),
    ],
)
def test_and_or_not_follow_truthiness(expression: str, result: bool) -> None:
    assert evaluate(expression) is result


def test_and_or_evaluate_their_right_side_only_when_needed() -> None:
    assert evaluate('flag or ("a" * 2)') is True
    assert evaluate('nothing and ("a" * 2)') is False


def test_truthy_and_is_missing() -> None:
    assert [truthy(v) for v in (None, False, "", [], 0, Decimal(0), "false", {}, True)] == [
        False, False, False, False, True, True, True, True, True,
    ]
    assert [is_missing(v) for v in (None, "", [], 0, False, {}, " ")] == [True, True, True, False, False, False, False]


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ('line_items[0].unit in ("EA", "CS")', True),
        ('currency in ("USD", "EUR")', False),
        ('10 in ("10.0", 5)', True),
        ('nothing in ("a", "b")', False),
    ],
)
def test_in_compares_with_each_option(expression: str, result: bool) -> None:
    assert evaluate(expression) is result


def test_in_evaluates_its_value_once() -> None:
    calls = iter(range(100))
    context = FunctionContext(uuid4=lambda: uuid.UUID(int=next(calls)))
    getter, _ = compile_text('uuid() in ("a", "b", "00000000-0000-0000-0000-000000000000")')
    assert getter(Scope({}, {}, {}, context)) is True
    assert next(calls) == 1


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("nothing is missing", True),
        ("blank is missing", True),
        ("empty is missing", True),
        ("missing_field is missing", True),
        ("zero is missing", False),
        ("flag is present", True),
        ("zero is present", True),
        ("blank is present", False),
    ],
)
def test_is_missing_and_is_present(expression: str, result: bool) -> None:
    assert evaluate(expression) is result


# ---- default ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nothing", "blank", "empty", "missing_field"])
def test_default_replaces_missing_values(value: str) -> None:
    assert evaluate(f'{value} default "fallback"') == "fallback"
    assert evaluate(f"{value} default number") == "1001"


def test_default_keeps_present_values_even_zero_and_false() -> None:
    assert evaluate('zero default 5') == 0
    assert evaluate('flag default false') is True
    assert evaluate("(1 = 2) default true") is False


def test_default_evaluates_its_fallback_only_when_needed() -> None:
    assert evaluate('number default ("a" * 2)') == "1001"


def test_defaults_chain() -> None:
    assert evaluate('nothing default blank default "last"') == "last"


# ---- tables -------------------------------------------------------------------------------------


def test_table_lookup_maps_a_key() -> None:
    assert evaluate("units[line_items[0].unit]") == "each"
    assert evaluate('units["CS"]') == "case"


def test_table_lookup_of_an_unknown_or_missing_key_is_missing() -> None:
    assert evaluate('units["PK"]') is None
    assert evaluate('units["ea"]') is None  # keys match exactly
    assert evaluate("units[nothing]") is None
    assert evaluate('units["PK"] default "each"') == "each"


def test_table_lookup_by_a_number_also_finds_its_text() -> None:
    assert evaluate("warehouses[1]") == "DAL"
    assert evaluate("warehouses[line_items[2].quantity]") == "DAL"
    assert evaluate("warehouses[2]") == "RNO"


def test_table_lookup_by_a_list_is_an_error() -> None:
    assert error_of("units[line_items.unit]") == "table 'units' is looked up by one value, got a list"


# ---- out, loop, message -------------------------------------------------------------------------


def test_out_reads_what_the_map_has_built() -> None:
    built = {"subtotal": Decimal("67.30"), "lines": [{"amount": Decimal("12.30")}, {"amount": Decimal("55.00")}]}
    assert exact(evaluate("out.subtotal * 2", out=built), "134.60")
    assert evaluate("out.lines.amount", out=built) == [Decimal("12.30"), Decimal("55.00")]
    assert exact(evaluate("sum(out.lines.amount)", out=built), "67.30")
    assert evaluate("out.total", out=built) is None


def test_loop_index_and_count() -> None:
    assert evaluate("loop.index", index=2, count=5) == 2
    assert evaluate("loop.count", index=2, count=5) == 5
    assert evaluate("loop.index") is None


def test_unknown_loop_value_is_a_compile_error() -> None:
    assert codes_of("loop.position") == ["MAP011"]


def test_message_root_reads_the_message() -> None:
    message = {"correlation_id": "c-1", "headers": {"X-Source": "shop"}}
    assert evaluate("message.correlation_id", message=message) == "c-1"
    assert evaluate("message.headers.X-Source", message=message) is None  # not a name: use a string key
    assert evaluate('message.headers["X-Source"]', message=message) == "shop"


def test_message_is_missing_without_a_message() -> None:
    assert evaluate("message.correlation_id") is None


def test_message_is_a_document_field_where_messages_are_not_allowed() -> None:
    assert evaluate("message.text", {"message": {"text": "hi"}}, allow_message=False) == "hi"


# ---- functions ----------------------------------------------------------------------------------


def test_function_calls() -> None:
    assert evaluate('concat("WEB-", number)') == "WEB-1001"
    assert evaluate("upper(currency)") == "USD"
    assert exact(evaluate("decimal(line_items[0].price)"), "4.10")
    assert evaluate('date("20240105", "CCYYMMDD")') == "2024-01-05"
    assert evaluate('substring("2026-11-20T09:15:00", 1, 10)') == "2026-11-20"


def test_functions_propagate_missing_values() -> None:
    assert evaluate("upper(nothing)") is None
    assert evaluate("decimal(blank)") is None
    assert evaluate('upper(nothing) default "USD"') == "USD"


def test_if_evaluates_only_the_chosen_branch() -> None:
    assert evaluate('if(flag, "yes", "a" * 2)') == "yes"
    assert evaluate('if(nothing, "a" * 2, "no")') == "no"
    assert evaluate('if(zero, "zero holds")') == "zero holds"
    assert evaluate('if(blank, "x")') is None


def test_context_functions_read_the_clock_and_uuid_source() -> None:
    assert evaluate("today()") == "2026-01-01"
    assert evaluate("now()") == "2026-01-01T00:00:00+00:00"
    assert evaluate("uuid()") == str(FIXED_UUID)


def test_function_errors_name_the_function_and_the_value() -> None:
    assert error_of('decimal("abc")') == 'decimal(): "abc" is not a number'
    assert error_of('date("2024-13-01", "YYYY-MM-DD")').startswith('date(): "2024-13-01" is not a valid date')


def test_unknown_function_and_wrong_argument_count_are_compile_errors() -> None:
    getter, bag = compile_text('uper(currency)')
    assert [d.code for d in bag.items] == ["NAME009"]
    assert bag.items[0].hint is not None and "upper" in bag.items[0].hint
    assert codes_of('upper("a", "b")') == ["MAP006"]
    assert getter(Scope(ORDER, ORDER, {}, functions())) is None


# The compiled calls take shortcuts for common argument types; they must agree with the library.
SHORTCUT_ARGUMENTS = [
    Decimal("4.10"), Decimal("-0"), 3, 0, "4.10", " 12.50 ", "1e3", ".5", "5.", "+2", "\u00a012", "", "  ",
    None, "abc", "1_000", "NaN", "Infinity", "١٢", True, [Decimal(1), "2"], "Ab", "ÉTÉ",
]


@pytest.mark.parametrize("name", ["decimal", "lower", "upper", "sum"])
@pytest.mark.parametrize("value", SHORTCUT_ARGUMENTS, ids=repr)
def test_function_shortcuts_agree_with_the_library(name: str, value: Any) -> None:
    try:
        expected: Any = FUNCTIONS[name].impl(value)
    except Exception as error:  # the library refuses it: the compiled call must refuse it too
        expected = EvaluationError
        assert type(error).__name__ == "FunctionError"
    getter, _ = compile_text(f"{name}(x)")
    scope = Scope({}, {"x": value}, {}, functions())
    if expected is EvaluationError:
        with pytest.raises(EvaluationError):
            getter(scope)
        return
    result = getter(scope)
    assert type(result) is type(expected)
    assert str(result) == str(expected)


def test_sum_of_decimals_is_exact() -> None:
    getter, _ = compile_text("sum(x)")
    amounts = [Decimal("0.10"), Decimal("0.20"), Decimal("12.300")]
    assert exact(getter(Scope({}, {"x": amounts}, {}, functions())), "12.600")


# ---- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [("12.50", "12.50"), (" 3 ", "3"), ("-0.5", "-0.5"), ("1e3", "1E+3"), ("\u00a012", "12"), (".5", "0.5")],
)
def test_numeric_text(text: str, number: str) -> None:
    assert str(number_text(text)) == number


@pytest.mark.parametrize("text", ["", " ", "abc", "1_000", "NaN", "-Infinity", "١٢", "1,5", "0x10"])
def test_text_that_is_not_numeric(text: str) -> None:
    assert number_text(text) is None


def test_to_number_takes_numbers_and_numeric_text_only() -> None:
    assert to_number(Decimal("1.5")) == Decimal("1.5")
    assert to_number(7) == Decimal(7)
    assert [to_number(v) for v in (True, None, [1], {"a": 1}, 1.5, Decimal("NaN"))] == [None] * 6


# ---- literal arguments bound once -----------------------------------------------------------------

BIND_CASES = [
    ("date", ("CCYYMMDD",)), ("date", ("YYYY-MM-DD",)), ("date", ("DD/MM/YY",)), ("date", (None,)),
    ("datetime", ("CCYYMMDDHHmm",)), ("datetime", (None,)),
    ("substring", (Decimal(1), Decimal(10))), ("substring", (Decimal(3),)), ("substring", ("2", "2")),
    ("round", (Decimal(2),)), ("round", (Decimal(0),)),
    ("pad_left", (Decimal(5), "0")), ("pad_right", (Decimal(4),)),
]
BIND_VALUES = [
    "20240105", "2024-01-05", "05/01/24", "202401051430", "2024-01-05T14:30:00", "2024-13-01", "", "  ", None, "x",
    Decimal("2.345"), Decimal("-12.5"), 7, "ABCDEFGHIJKL", ["a"], True, Unit.EACH,
]


def outcome(function: Any, *args: Any) -> tuple[Any, ...]:
    """What a call gives: its value (with its type and digits) or its error message."""
    try:
        result = function(*args)
    except Exception as error:
        return ("error", type(error).__name__, str(error))
    return ("value", type(result), str(result))


@pytest.mark.parametrize(("name", "literals"), BIND_CASES, ids=[f"{n}{a}" for n, a in BIND_CASES])
def test_bound_literal_arguments_give_what_the_library_gives(name: str, literals: tuple[Any, ...]) -> None:
    spec = FUNCTIONS[name]
    assert spec.bind is not None
    bound = spec.bind(*literals)
    for value in BIND_VALUES:
        assert outcome(bound, value) == outcome(spec.impl, value, *literals), value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ('date("20240105", "NOPE")', 'date(): the format "NOPE" needs a year (YYYY, CCYY or YY), MM and DD'),
        ('substring("abc", 0)', "substring(): start counts from 1, got 0"),
        ('round("1.5", -1)', "round(): places must be 0 or more, got -1"),
        ('pad_left("1", 3, "ab")', 'pad_left(): the padding character must be one character, got "ab"'),
    ],
)
def test_a_literal_argument_the_function_refuses_still_fails_when_the_map_runs(expression: str, message: str) -> None:
    getter, bag = compile_text(expression)
    assert not bag.items
    with pytest.raises(EvaluationError) as excinfo:
        getter(Scope({}, {}, {}, functions()))
    assert str(excinfo.value) == message


def test_a_refused_literal_does_not_fail_for_a_missing_value() -> None:
    assert evaluate("substring(nothing, 0)") is None


def test_declared_result_types_match_the_documented_results() -> None:
    typed = [spec for spec in FUNCTIONS.values() if spec.result_type is not None]
    assert {spec.name for spec in typed} >= {"decimal", "concat", "date", "contains", "count", "split"}
    for spec in typed:
        for example in spec.examples:
            assert example.result is None or type(example.result) is spec.result_type, spec.name
