"""Whole maps compiled from route files (through lint, as `crossdock test` and `run` do) and run."""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from crossdock.canonical import Order, Shipment, plain_converter, to_plain
from crossdock.dsl.lint import lint
from crossdock.engine.clock import ManualClock
from crossdock.engine.errors import MapError, ValidationFailed
from crossdock.engine.mapping.compiler import CompiledMap, validate_model
from crossdock.engine.mapping.functions import FunctionContext
from crossdock.formats import json as json_format

REPO = Path(__file__).resolve().parents[2]


def compile_map_text(tmp_path: Path, body: str, *, target: str = "json") -> CompiledMap:
    """Write map "m" with `body` as its lines into `tmp_path` and lint the folder; it must lint clean."""
    text = f'map "m"\n  from json\n  to {target}\n{textwrap.indent(textwrap.dedent(body).strip(), "  ")}\nend\n'
    path = tmp_path / "m.route"
    path.write_text(text, encoding="utf-8")
    result = lint([tmp_path])
    assert not result.errors, [str(d) for d in result.errors]
    assert result.plan is not None
    return result.plan.maps["m"]


def line_of(compiled: CompiledMap, fragment: str) -> int:
    """The 1-based line of the map file that contains `fragment`."""
    text = Path(compiled.definition.span.file).read_text(encoding="utf-8")
    (number,) = [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line]
    return number


WEB_ORDER = json_format.decode((REPO / "examples/webstore-orders/order-1001.json").read_bytes(), {})


# ---- assignments --------------------------------------------------------------------------------


def test_nested_targets_build_nested_objects(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        header.id = number
        header.currency.code = upper(currency)
        header.channel = "web"
        flat = "x"
    """)
    assert compiled.run(WEB_ORDER) == {
        "header": {"id": "1001", "currency": {"code": "USD"}, "channel": "web"},
        "flat": "x",
    }


def test_nested_target_under_a_value_that_is_not_an_object_fails(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        a = "text"
        a.b = 1
    """)
    with pytest.raises(MapError) as excinfo:
        compiled.run({})
    assert excinfo.value.code == "M003"
    assert excinfo.value.span is not None and excinfo.value.span.line == line_of(compiled, "a.b = 1")


def test_the_output_omits_missing_values(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        none = nothing
        blank = blank
        empty = empty
        absent = not_there
        nested.none = nothing
        zero = zero
        no = no
        text = "kept"
    """)
    document = {"nothing": None, "blank": "", "empty": [], "zero": 0, "no": False}
    assert compiled.run(document) == {"zero": 0, "no": False, "text": "kept"}


def test_money_is_exact(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        amount = decimal(quantity) * decimal(price)
        total = out.amount + decimal(tax)
    """)
    out = compiled.run({"quantity": 3, "price": "4.10", "tax": Decimal("0.93")})
    assert (str(out["amount"]), str(out["total"])) == ("12.30", "13.23")


def test_later_lines_read_earlier_ones_through_out(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        first = "a"
        second = concat(out.first, "b")
    """)
    assert compiled.run({}) == {"first": "a", "second": "ab"}


# ---- for each -----------------------------------------------------------------------------------

LINES_DOCUMENT = {
    "items": [
        {"sku": "A", "qty": "2", "price": "1.50"},
        {"sku": "B", "qty": "0", "price": "9.99"},
        {"sku": "C", "qty": "1", "price": "0.10"},
    ]
}


def test_for_each_builds_one_object_per_element(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        lines = for each items
          sku = sku
          position = loop.index
          of = loop.count
          amount = decimal(qty) * decimal(price)
        end
        skus = out.lines.sku
    """)
    out = compiled.run(LINES_DOCUMENT)
    assert [(line["sku"], line["position"], line["of"], str(line["amount"])) for line in out["lines"]] == [
        ("A", 1, 3, "3.00"), ("B", 2, 3, "0.00"), ("C", 3, 3, "0.10"),
    ]
    assert out["skus"] == ["A", "B", "C"]


def test_where_skips_elements_and_loop_index_counts_the_objects_built(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        lines = for each items where decimal(qty) > 0
          line_number = loop.index
          of = loop.count
          sku = sku
        end
    """)
    assert compiled.run(LINES_DOCUMENT)["lines"] == [
        {"line_number": 1, "of": 2, "sku": "A"},
        {"line_number": 2, "of": 2, "sku": "C"},
    ]


def test_where_sees_the_position_in_the_list_being_read(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        rest = for each items where loop.index > 1
          sku = sku
        end
    """)
    assert compiled.run(LINES_DOCUMENT)["rest"] == [{"sku": "B"}, {"sku": "C"}]


def test_for_each_over_a_missing_path_gives_an_empty_list(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        lines = for each items
          sku = sku
        end
    """)
    assert compiled.run({}) == {"lines": []}
    assert compiled.run({"items": ""}) == {"lines": []}


def test_for_each_over_a_single_object_gives_a_list_of_one(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        lines = for each items
          sku = sku
        end
    """)
    assert compiled.run({"items": {"sku": "A"}}) == {"lines": [{"sku": "A"}]}


def test_nested_for_each_and_out_inside_the_loop(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        orders = for each orders
          id = id
          lines = for each lines
            sku = sku
            label = concat(out.sku, "-", loop.index)
          end
          count = loop.index
        end
    """)
    document = {"orders": [{"id": "o1", "lines": [{"sku": "A"}, {"sku": "B"}]}, {"id": "o2", "lines": []}]}
    assert compiled.run(document) == {
        "orders": [
            {"id": "o1", "lines": [{"sku": "A", "label": "A-1"}, {"sku": "B", "label": "B-2"}], "count": 1},
            {"id": "o2", "lines": [], "count": 2},
        ]
    }


# ---- object -------------------------------------------------------------------------------------


def test_object_from_moves_the_current_value(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        customer = object from customer
          name = concat(first_name, " ", last_name)
          address = object from address
            city = city
          end
          order_number = $.number
        end
    """)
    document = {"number": "7", "customer": {"first_name": "Ana", "last_name": "Ruiz", "address": {"city": "Austin"}}}
    assert compiled.run(document) == {
        "customer": {"name": "Ana Ruiz", "address": {"city": "Austin"}, "order_number": "7"}
    }


def test_object_from_a_missing_path_sets_nothing(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        customer = object from customer
          name = "always"
        end
    """)
    assert compiled.run({}) == {}


def test_object_from_a_list_takes_its_first_element(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        ship = object from addresses[kind = "ship"]
          city = city
        end
    """)
    document = {"addresses": [{"kind": "bill", "city": "Dallas"}, {"kind": "ship", "city": "Austin"}]}
    assert compiled.run(document) == {"ship": {"city": "Austin"}}


def test_object_without_from_reads_the_same_value_and_an_empty_one_is_left_out(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        header = object
          id = number
        end
        extra = object
          note = note
        end
    """)
    assert compiled.run({"number": "1"}) == {"header": {"id": "1"}}


def test_after_an_object_block_paths_read_the_outer_value_again(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        lines = for each items
          detail = object from detail
            position = loop.index
            code = code
          end
          sku = sku
          built = out.detail.code
        end
    """)
    document = {"items": [{"sku": "A", "detail": {"code": "x"}}, {"sku": "B", "detail": {"code": "y"}}]}
    assert compiled.run(document) == {
        "lines": [
            {"detail": {"position": 1, "code": "x"}, "sku": "A", "built": "x"},
            {"detail": {"position": 2, "code": "y"}, "sku": "B", "built": "y"},
        ]
    }


# ---- when ---------------------------------------------------------------------------------------


def test_when_runs_the_first_clause_that_holds_or_otherwise(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        when warehouse = "DAL"
          ship_from = "Dallas"
          priority = 1
        when warehouse in ("DAL", "RNO")
          ship_from = "Reno"
        otherwise
          ship_from = "unassigned"
        end
        after = "yes"
    """)
    assert compiled.run({"warehouse": "DAL"}) == {"ship_from": "Dallas", "priority": 1, "after": "yes"}
    assert compiled.run({"warehouse": "RNO"}) == {"ship_from": "Reno", "after": "yes"}
    assert compiled.run({}) == {"ship_from": "unassigned", "after": "yes"}


def test_when_may_hold_loops_and_objects(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        when items is present
          lines = for each items
            sku = sku
          end
          summary = object
            count = count(items)
          end
        end
    """)
    assert compiled.run({"items": [{"sku": "A"}]}) == {"lines": [{"sku": "A"}], "summary": {"count": 1}}
    assert compiled.run({}) == {}


# ---- tables, message, functions -----------------------------------------------------------------


def test_inline_tables_of_the_map_and_of_the_file(tmp_path: Path) -> None:
    (tmp_path / "tables.route").write_text('table warehouses\n  "dallas" -> "DAL"\nend\n', encoding="utf-8")
    compiled = compile_map_text(tmp_path, """
        table units
          "EA" -> "each"
          "CS" -> "case"
        end
        units_seen = for each items
          unit = units[unit] default "each"
        end
        ship_from = warehouses[lower(warehouse)] default "UNASSIGNED"
    """)
    document = {"warehouse": "Dallas", "items": [{"unit": "CS"}, {"unit": "PK"}, {}]}
    assert compiled.run(document) == {
        "units_seen": [{"unit": "case"}, {"unit": "each"}, {"unit": "each"}],
        "ship_from": "DAL",
    }


def test_a_map_reads_the_message(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        trace = message.correlation_id
        source = message.headers.source
    """)
    message = {"correlation_id": "c-9", "headers": {"source": "shop"}}
    assert compiled.run({}, message=message) == {"trace": "c-9", "source": "shop"}
    assert compiled.run({}) == {}


def test_context_functions_use_the_given_clock(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, "as_of = today()")
    assert compiled.run({}, FunctionContext(clock=ManualClock(1_767_225_600.0))) == {"as_of": "2026-01-01"}
    before = dt.datetime.now(dt.UTC).date().isoformat()
    as_of = compiled.run({})["as_of"]  # without a context: the system clock
    assert as_of in {before, dt.datetime.now(dt.UTC).date().isoformat()}


# ---- errors -------------------------------------------------------------------------------------


def test_a_failing_assignment_raises_map_error_with_its_line(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        po_number = number
        quantity = decimal(qty)
    """)
    with pytest.raises(MapError) as excinfo:
        compiled.run({"number": "1", "qty": "abc"})
    error = excinfo.value
    assert error.code == "M001"
    assert error.span is not None and error.span.line == line_of(compiled, "quantity = decimal(qty)")
    assert error.message == 'decimal(): "abc" is not a number'
    assert str(error).startswith(f"{error.span.file}:{error.span.line}:")


def test_an_error_inside_for_each_names_the_element(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        lines = for each items
          sku = sku
          amount = price * qty
        end
    """)
    with pytest.raises(MapError) as excinfo:
        compiled.run({"items": [{"price": "1", "qty": "2"}, {"price": "x", "qty": "2"}]})
    error = excinfo.value
    assert error.span is not None and error.span.line == line_of(compiled, "amount = price * qty")
    loop_line = line_of(compiled, "lines = for each items")
    assert error.message == f"'*' needs numbers, got text 'x' (for each at line {loop_line}, element 2 of 2)"


def test_errors_in_where_when_and_object_from_carry_their_lines(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, """
        lines = for each items where qty > 1
          sku = sku
        end
    """)
    with pytest.raises(MapError) as excinfo:
        compiled.run({"items": [{"qty": "many"}]})
    assert excinfo.value.span is not None and excinfo.value.span.line == line_of(compiled, "where qty > 1")

    compiled = compile_map_text(tmp_path, """
        when code > 1
          big = true
        end
    """)
    with pytest.raises(MapError) as excinfo:
        compiled.run({"code": "A"})
    assert excinfo.value.span is not None and excinfo.value.span.line == line_of(compiled, "when code > 1")


# ---- validation ---------------------------------------------------------------------------------

ORDER_MAP = """
    po_number = number
    order_date = date(substring(created_at, 1, 10))
    ship_to = object from shipping_address
      name = name
      address = object
        line1 = address1
        city = city
        country = upper(country_code)
      end
    end
    lines = for each line_items
      line_number = loop.index
      sku = sku
      quantity = decimal(quantity)
      unit = "each"
      unit_price = decimal(price)
      amount = decimal(quantity) * decimal(price)
    end
    total = sum(out.lines.amount)
    subtotal = out.total
"""


def test_run_validated_returns_plain_canonical_data(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, ORDER_MAP, target="Order")
    out = compiled.run_validated(WEB_ORDER)
    assert out["order_date"] == "2026-11-20"
    assert out["currency"] == "USD"  # the model's default
    assert [(line["unit"], str(line["amount"])) for line in out["lines"]] == [("each", "12.30"), ("each", "55.00")]
    assert type(out["lines"][0]["unit"]) is str
    assert str(out["total"]) == "67.30"


def test_run_validated_names_the_bad_field(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, ORDER_MAP, target="Order")
    document = {key: value for key, value in WEB_ORDER.items() if key != "shipping_address"}
    with pytest.raises(ValidationFailed) as excinfo:
        compiled.run_validated(document)
    assert [problem.path for problem in excinfo.value.problems] == ["ship_to"]
    assert excinfo.value.code == "V001"
    assert "map 'm' produced an invalid Order: ship_to: Field required" in str(excinfo.value)


def test_run_validated_names_a_bad_line_field(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, ORDER_MAP, target="Order")
    document = dict(WEB_ORDER, line_items=[dict(WEB_ORDER["line_items"][0], quantity=0)])
    with pytest.raises(ValidationFailed) as excinfo:
        compiled.run_validated(document)
    assert [problem.path for problem in excinfo.value.problems] == ["lines.0.quantity"]


def test_a_map_to_json_is_not_validated(tmp_path: Path) -> None:
    compiled = compile_map_text(tmp_path, 'anything = "goes"')
    assert compiled.target_model is None
    assert compiled.run_validated({}) == {"anything": "goes"}


# ---- plain data ---------------------------------------------------------------------------------


def reference_plain(instance: BaseModel) -> dict[str, Any]:
    """What to_plain must give, the slow and obvious way: walk every value of the dump."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, Enum):
            return value.value
        return value

    return plain(instance.model_dump(mode="python", exclude_none=True))  # type: ignore[no-any-return]


class Colour(Enum):
    RED = "red"


class Inner(BaseModel):
    at: dt.datetime
    colours: list[Colour] = []


class Mixed(BaseModel):
    day: dt.date
    maybe_day: dt.date | None = None
    colour: Colour
    either: dt.date | Colour
    inners: list[Inner]
    free: dict[str, Any]
    anything: Any = None
    amount: Decimal


def test_to_plain_converts_dates_and_enums_wherever_the_types_put_them() -> None:
    instance = Mixed.model_validate({
        "day": "2024-01-05", "colour": "red", "either": "red",
        "inners": [{"at": "2024-01-05T10:00:00+02:00", "colours": ["red"]}],
        "free": {"when": dt.date(2024, 2, 1), "list": [Colour.RED]}, "anything": [dt.date(2024, 3, 1)],
        "amount": "12.50",
    })
    plain = to_plain(instance)
    assert plain == reference_plain(instance)
    assert plain["either"] == "red" and plain["free"] == {"when": "2024-02-01", "list": ["red"]}
    assert plain["inners"] == [{"at": "2024-01-05T10:00:00+02:00", "colours": ["red"]}]
    assert str(plain["amount"]) == "12.50"


@pytest.mark.parametrize("name", ["order-1001", "order-1002", "order-1003"])
def test_to_plain_agrees_with_the_reference_on_the_demo_orders(name: str) -> None:
    expected = REPO / "routes/fixtures/web-order-to-order" / f"{name}.expected.json"
    instance = Order.model_validate(json_format.decode(expected.read_bytes(), {}))
    plain = to_plain(instance)
    assert plain == reference_plain(instance)
    assert type(plain["lines"][0]["unit"]) is str


def test_to_plain_agrees_with_the_reference_on_a_shipment() -> None:
    instance = Shipment.model_validate({
        "shipment_id": "S-1", "po_numbers": ["PO-1"], "ship_date": "2024-01-06",
        "estimated_delivery_date": "2024-01-08", "ship_from": {"name": "DC"}, "ship_to": {"name": "Store"},
        "packages": [{"sscc": "000000000000000001", "weight": "2.5", "weight_unit": "kg",
                      "lines": [{"sku": "A", "quantity": "2", "unit": "case", "po_number": "PO-1"}]}],
    })
    plain = to_plain(instance)
    assert plain == reference_plain(instance)
    assert plain["packages"][0]["weight_unit"] == "kg" and plain["estimated_delivery_date"] == "2024-01-08"


def test_the_converter_is_built_once_per_model() -> None:
    assert plain_converter(Order) is plain_converter(Order)


def test_validate_model_returns_plain_data() -> None:
    data: Any = validate_model(Inner, {"at": "2024-01-05T10:00:00", "colours": ["red"]}, "test")
    assert data == {"at": "2024-01-05T10:00:00", "colours": ["red"]}
