"""The JSON format: exact decimals, strict input, exact error positions, and the format registry."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum

import pytest

from crossdock.engine.errors import DecodeError, PermanentError, Position
from crossdock.formats import json as json_format
from crossdock.formats.base import UnknownFormat, format_names, format_spec, load_format

NO_OPTIONS: dict[str, object] = {}


def decode_error(data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as excinfo:
        json_format.decode(data, NO_OPTIONS)
    return excinfo.value


def test_numbers_with_a_fraction_decode_to_exact_decimals() -> None:
    value = json_format.decode(b'{"price": 0.10, "qty": 3, "big": 2E+3, "neg": -1.5}', NO_OPTIONS)
    assert value == {"price": Decimal("0.10"), "qty": 3, "big": Decimal("2E+3"), "neg": Decimal("-1.5")}
    assert str(value["price"]) == "0.10"
    assert type(value["qty"]) is int


def test_decimal_round_trip_keeps_every_digit() -> None:
    original = b'{"amount": 12.50, "tiny": 0.000001, "lines": [{"unit_price": 1234567890.123456789}]}'
    decoded = json_format.decode(original, NO_OPTIONS)
    encoded = json_format.encode(decoded, NO_OPTIONS)
    assert encoded == b'{"amount":"12.50","tiny":"0.000001","lines":[{"unit_price":"1234567890.123456789"}]}'
    again = json_format.decode(encoded, NO_OPTIONS)
    assert Decimal(again["lines"][0]["unit_price"]) == decoded["lines"][0]["unit_price"]
    assert again["amount"] == "12.50"


def test_decimals_are_written_without_an_exponent() -> None:
    value = [Decimal("1E+2"), Decimal("1E-7"), Decimal("-0.50")]
    assert json_format.encode(value, NO_OPTIONS) == b'["100","0.0000001","-0.50"]'


def test_dates_datetimes_and_enums_are_written_as_text() -> None:
    class Unit(StrEnum):
        EACH = "each"

    at = dt.datetime(2024, 1, 5, 14, 30, tzinfo=dt.UTC)
    value = {"day": dt.date(2024, 1, 5), "at": at, "unit": Unit.EACH}
    assert json_format.encode(value, NO_OPTIONS) == (
        b'{"day":"2024-01-05","at":"2024-01-05T14:30:00+00:00","unit":"each"}'
    )


def test_compact_output_has_no_trailing_newline_and_pretty_output_does() -> None:
    value = {"a": [1, Decimal("2.0")]}
    assert json_format.encode(value, {"pretty": False}) == b'{"a":[1,"2.0"]}'
    assert json_format.encode(value, {"pretty": True}) == b'{\n  "a": [\n    1,\n    "2.0"\n  ]\n}\n'


def test_a_utf8_byte_order_mark_is_skipped() -> None:
    assert json_format.decode(b'\xef\xbb\xbf{"sku": "A\xc3\xa9"}', NO_OPTIONS) == {"sku": "Aé"}


def test_syntax_error_position_is_exact() -> None:
    error = decode_error(b'{\n  "po": "1",\n  "qty": 3,\n}')
    assert error.code == "D103"
    assert error.position == Position(offset=27, line=4, column=1)
    assert "Expecting property name" in error.message


def test_column_counts_characters_and_offset_counts_bytes() -> None:
    error = decode_error('{"name": "Zoë", "qty": }'.encode())
    assert error.code == "D103"
    assert error.position == Position(offset=24, line=1, column=24)


@pytest.mark.parametrize(
    ("data", "position"),
    [
        (b'{"price": NaN}', Position(offset=10, line=1, column=11)),
        (b'[1,\n "Infinity", Infinity]', Position(offset=17, line=2, column=14)),
        (b'{"a": "NaN -Infinity", "b": -Infinity}', Position(offset=28, line=1, column=29)),
    ],
)
def test_non_finite_constants_are_rejected_where_they_stand(data: bytes, position: Position) -> None:
    error = decode_error(data)
    assert error.code == "D104"
    assert error.position == position


def test_numbers_too_long_to_write_out_are_rejected() -> None:
    assert decode_error(b"[1, 1e99999]").position == Position(offset=4, line=1, column=5)
    error = decode_error(b"[" + b"9" * 5000 + b"]")
    assert (error.code, error.position) == ("D104", Position(offset=1, line=1, column=2))


def test_non_utf8_bytes_report_their_byte_offset() -> None:
    error = decode_error(b'{"city": "M\xfcnchen"}')
    assert error.code == "D101"
    assert error.position == Position(offset=11, line=1, column=12)
    assert "0xFC" in error.message


def test_non_utf8_offset_counts_a_skipped_byte_order_mark() -> None:
    error = decode_error(b'\xef\xbb\xbf["\xc3\xa9", "\xff"]')
    assert error.position == Position(offset=11, line=1, column=8)


@pytest.mark.parametrize("data", [b"", b" \r\n\t"])
def test_empty_input_is_a_decode_error(data: bytes) -> None:
    error = decode_error(data)
    assert error.code == "D102"
    assert error.position == Position(offset=0, line=1, column=1)


def test_values_without_a_json_form_are_permanent_errors() -> None:
    with pytest.raises(PermanentError) as excinfo:
        json_format.encode({"tags": {"a"}}, NO_OPTIONS)
    assert excinfo.value.code == "D110"
    assert "set has no JSON form" in excinfo.value.message
    with pytest.raises(PermanentError) as excinfo:
        json_format.encode([Decimal("NaN")], NO_OPTIONS)
    assert "NaN is not a finite number" in excinfo.value.message


def test_the_registry_loads_json_lazily_and_suggests_names() -> None:
    assert "json" in format_names()
    assert load_format("json") is json_format
    spec = format_spec("json")
    assert (spec.content_type, spec.extensions) == ("application/json", (".json",))
    assert [o.name for o in spec.options] == ["pretty"]
    with pytest.raises(UnknownFormat) as excinfo:
        load_format("jsno")
    assert excinfo.value.hint == "did you mean 'json'?"
