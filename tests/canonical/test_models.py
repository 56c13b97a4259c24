"""Validation behaviour of the canonical models: exact Decimal, strictness, consistency checks, units."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from crossdock.canonical import (
    MODELS,
    InventoryPosition,
    Invoice,
    Order,
    PriceList,
    Shipment,
    UnknownModel,
    model,
    to_plain,
)
from crossdock.canonical.common import UNIT_TO_X12, X12_UNITS, Unit, amounts_agree


def order_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "po_number": "PO-1001",
        "order_date": "2024-01-05",
        "ship_to": {
            "name": "Acme DC 12",
            "address": {"line1": "1 Dock Rd", "city": "Dallas", "region": "TX", "country": "US"},
        },
        "lines": [
            {"line_number": 1, "sku": "A-1", "quantity": "3", "unit": "each", "unit_price": "0.10",
             "amount": "0.30"},
            {"line_number": 2, "sku": "B-2", "quantity": "2", "unit": "case", "unit_price": "12.50",
             "amount": "25.00"},
        ],
        "subtotal": "25.30",
        "tax": "2.09",
        "shipping": "5.00",
        "total": "32.39",
    }
    data.update(changes)
    return data


def invoice_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "invoice_number": "INV-9",
        "invoice_date": "2024-01-09",
        "po_number": "PO-1001",
        "currency": "USD",
        "bill_to": {"name": "Acme Corp"},
        "terms": {"net_days": 30, "discount_percent": "2", "discount_days": 10},
        "lines": [
            {"line_number": 1, "sku": "A-1", "quantity": "3", "unit": "each", "unit_price": "0.3333",
             "amount": "1.00"},
        ],
        "subtotal": "1.00",
        "freight": "4.50",
        "total": "5.50",
    }
    data.update(changes)
    return data


def errors_of(excinfo: pytest.ExceptionInfo[ValidationError]) -> list[tuple[tuple[Any, ...], str]]:
    return [(tuple(e["loc"]), e["msg"]) for e in excinfo.value.errors()]


def test_decimal_values_keep_their_exact_digits() -> None:
    order = Order.model_validate(order_data())
    line = order.lines[0]
    assert line.unit_price == Decimal("0.10")
    assert str(line.unit_price) == "0.10"
    assert isinstance(order.total, Decimal) and str(order.total) == "32.39"


def test_int_and_decimal_inputs_are_accepted_for_money() -> None:
    data = order_data(subtotal=Decimal("25.30"))
    data["lines"][1]["quantity"] = 2
    order = Order.model_validate(data)
    assert order.lines[1].quantity == Decimal(2)
    assert order.subtotal == Decimal("25.30")


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_nan_and_infinity_are_rejected(bad: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Order.model_validate(order_data(tax=bad))
    assert [loc for loc, _ in errors_of(excinfo)] == [("tax",)]


def test_unknown_field_is_rejected_with_its_name() -> None:
    data = order_data(po_numbr="PO-1")
    with pytest.raises(ValidationError) as excinfo:
        Order.model_validate(data)
    assert errors_of(excinfo) == [(("po_numbr",), "Extra inputs are not permitted")]


def test_unknown_nested_field_is_rejected_with_its_path() -> None:
    data = order_data()
    data["lines"][0]["colour"] = "red"
    with pytest.raises(ValidationError) as excinfo:
        Order.model_validate(data)
    assert [loc for loc, _ in errors_of(excinfo)] == [("lines", 0, "colour")]


def test_missing_required_fields_are_named() -> None:
    data = order_data()
    del data["po_number"]
    del data["ship_to"]
    with pytest.raises(ValidationError) as excinfo:
        Order.model_validate(data)
    assert errors_of(excinfo) == [(("po_number",), "Field required"), (("ship_to",), "Field required")]


def test_blank_po_number_is_rejected() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Order.model_validate(order_data(po_number="   "))
    assert [loc for loc, _ in errors_of(excinfo)] == [("po_number",)]


def test_an_order_needs_at_least_one_line() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Order.model_validate(order_data(lines=[], subtotal=None, total=None))
    assert [loc for loc, _ in errors_of(excinfo)] == [("lines",)]


def test_line_amount_must_equal_quantity_times_price() -> None:
    data = order_data()
    data["lines"][1]["amount"] = "24.00"
    with pytest.raises(ValidationError) as excinfo:
        Order.model_validate(data)
    ((loc, message),) = errors_of(excinfo)
    assert loc == ("lines", 1)
    assert "amount 24.00" in message and "quantity × unit_price = 25.00" in message


def test_subtotal_must_equal_the_sum_of_line_amounts() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Order.model_validate(order_data(subtotal="25.00", total="32.09"))
    ((loc, message),) = errors_of(excinfo)
    assert loc == ()
    assert "subtotal 25.00" in message and "sum of line amounts 25.30" in message


def test_total_must_equal_subtotal_plus_charges() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Order.model_validate(order_data(total="30.00"))
    ((_, message),) = errors_of(excinfo)
    assert "total 30.00" in message and "= 32.39" in message


def test_absent_charges_count_as_zero_in_the_total() -> None:
    order = Order.model_validate(order_data(tax=None, shipping=None, discount="0.30", total="25.00"))
    assert order.total == Decimal("25.00")


def test_totals_are_not_checked_when_not_stated() -> None:
    data = order_data(subtotal=None, total=None, tax=None, shipping=None)
    for line in data["lines"]:
        del line["amount"]
    assert Order.model_validate(data).total is None


def test_duplicate_line_numbers_are_rejected() -> None:
    data = order_data()
    data["lines"][1]["line_number"] = 1
    with pytest.raises(ValidationError) as excinfo:
        Order.model_validate(data)
    ((_, message),) = errors_of(excinfo)
    assert "line_number 1" in message


def test_amounts_agree_with_the_rounding_the_document_shows() -> None:
    assert amounts_agree(Decimal("1.00"), Decimal("0.9999"))
    assert amounts_agree(Decimal("0.9999"), Decimal("0.9999"))
    assert not amounts_agree(Decimal("12"), Decimal("12.40"))
    assert not amounts_agree(Decimal("1.01"), Decimal("0.9999"))


@pytest.mark.parametrize(
    ("field", "value"), [("currency", "usd"), ("currency", "US"), ("order_date", 20240105)]
)
def test_codes_and_dates_are_strict(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Order.model_validate(order_data(**{field: value}))
    assert [loc for loc, _ in errors_of(excinfo)] == [(field,)]


def test_country_must_be_alpha_2() -> None:
    data = order_data()
    data["ship_to"]["address"]["country"] = "USA"
    with pytest.raises(ValidationError) as excinfo:
        Order.model_validate(data)
    assert [loc for loc, _ in errors_of(excinfo)] == [("ship_to", "address", "country")]


def test_canonical_unit_codes_are_accepted_and_others_rejected() -> None:
    data = order_data()
    data["lines"][0]["unit"] = "kg"
    assert Order.model_validate(data).lines[0].unit is Unit.KILOGRAM
    data["lines"][0]["unit"] = "EA"
    with pytest.raises(ValidationError) as excinfo:
        Order.model_validate(data)
    ((loc, message),) = errors_of(excinfo)
    assert loc == ("lines", 0, "unit")
    assert "'each'" in message


def test_x12_unit_table_maps_to_canonical_units_and_back() -> None:
    assert X12_UNITS["EA"] is Unit.EACH
    assert X12_UNITS["CA"] is Unit.CASE
    assert X12_UNITS["LB"] is Unit.POUND
    assert UNIT_TO_X12[Unit.EACH] == "EA"
    assert set(UNIT_TO_X12) == set(Unit)


def test_to_plain_keeps_decimal_and_turns_dates_and_units_into_text() -> None:
    plain = to_plain(Order.model_validate(order_data()))
    assert plain["order_date"] == "2024-01-05"
    assert plain["lines"][0]["unit"] == "each" and type(plain["lines"][0]["unit"]) is str
    price = plain["lines"][0]["unit_price"]
    assert price == Decimal("0.10") and str(price) == "0.10"
    assert "notes" not in plain
    assert Order.model_validate(plain) == Order.model_validate(order_data())


def test_to_plain_writes_datetimes_as_iso_text() -> None:
    position = InventoryPosition.model_validate(
        {"sku": "A-1", "location": "DAL", "on_hand": "10", "available": "-2", "unit": "each",
         "as_of": "2024-01-05T14:30:00Z"}
    )
    assert to_plain(position)["as_of"] == "2024-01-05T14:30:00+00:00"
    assert position.available == Decimal(-2)


def test_invoice_line_amount_may_be_rounded_to_the_cent() -> None:
    invoice = Invoice.model_validate(invoice_data())
    assert invoice.lines[0].amount == Decimal("1.00")


def test_invoice_totals_are_checked() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Invoice.model_validate(invoice_data(total="5.00"))
    ((_, message),) = errors_of(excinfo)
    assert "total 5.00" in message and "subtotal + tax + freight - discount = 5.50" in message


def test_invoice_terms_need_both_discount_fields() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Invoice.model_validate(invoice_data(terms={"net_days": 30, "discount_percent": "2"}))
    ((loc, message),) = errors_of(excinfo)
    assert loc == ("terms",)
    assert "discount_percent and discount_days" in message


def shipment_data() -> dict[str, Any]:
    return {
        "shipment_id": "SH-1",
        "po_numbers": ["PO-1001"],
        "ship_date": "2024-01-06",
        "ship_from": {"name": "Dallas DC", "id": "DAL"},
        "ship_to": {"name": "Acme DC 12"},
        "packages": [
            {"sscc": "000123456789012345", "weight": "4.2", "weight_unit": "kg",
             "lines": [{"sku": "A-1", "quantity": "3", "unit": "each", "po_number": "PO-1001",
                        "line_number": 1}]},
        ],
    }


def test_shipment_lines_must_name_orders_of_the_shipment() -> None:
    assert Shipment.model_validate(shipment_data()).packages[0].weight == Decimal("4.2")
    data = shipment_data()
    data["packages"][0]["lines"][0]["po_number"] = "PO-9"
    with pytest.raises(ValidationError) as excinfo:
        Shipment.model_validate(data)
    ((_, message),) = errors_of(excinfo)
    assert "po_number 'PO-9'" in message


def test_package_weight_needs_a_unit_of_weight() -> None:
    data = shipment_data()
    data["packages"][0]["weight_unit"] = "case"
    with pytest.raises(ValidationError) as excinfo:
        Shipment.model_validate(data)
    ((loc, message),) = errors_of(excinfo)
    assert loc == ("packages", 0)
    assert "weight_unit 'case'" in message


def test_sscc_must_have_18_digits() -> None:
    data = shipment_data()
    data["packages"][0]["sscc"] = "12345"
    with pytest.raises(ValidationError) as excinfo:
        Shipment.model_validate(data)
    assert [loc for loc, _ in errors_of(excinfo)] == [("packages", 0, "sscc")]


def test_price_list_rejects_the_same_break_twice_and_backwards_dates() -> None:
    base = {
        "price_list_id": "WHOLESALE-2024",
        "currency": "EUR",
        "effective_date": "2024-02-01",
        "items": [{"sku": "A-1", "unit": "each", "unit_price": "1.20"},
                  {"sku": "A-1", "unit": "each", "unit_price": "1.10", "min_quantity": "100"}],
    }
    assert PriceList.model_validate(base).items[1].min_quantity == Decimal(100)
    twice = copy.deepcopy(base)
    twice["items"][1]["min_quantity"] = "1"
    with pytest.raises(ValidationError) as excinfo:
        PriceList.model_validate(twice)
    assert "priced twice" in errors_of(excinfo)[0][1]
    with pytest.raises(ValidationError) as excinfo:
        PriceList.model_validate({**base, "expires": "2024-01-31"})
    assert "before effective_date" in errors_of(excinfo)[0][1]


def test_models_by_name_and_did_you_mean() -> None:
    assert model("OrderLine") is MODELS["OrderLine"]
    documents = {"Order", "InventoryPosition", "Shipment", "Invoice", "PriceList"}
    assert documents | {"OrderLine", "Address", "Party"} <= set(MODELS)
    with pytest.raises(UnknownModel) as excinfo:
        model("Ordr")
    assert excinfo.value.hint == "did you mean 'Order'?"
    assert isinstance(excinfo.value, LookupError)
