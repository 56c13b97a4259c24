"""Benchmark (b): the demo map run by crossdock against the same mapping written by hand in Python.

Both sides take the same decoded web order (10 lines, Decimal money) and build the same canonical
Order dict; the hand-written side is what a developer would write without crossdock. Printed: maps
per second for each, and the ratio (goal: crossdock >= 0.5 x hand-written). Measured twice: the
mapping alone, and mapping + pydantic validation of the Order (which both sides need in production).

    .venv/bin/python bench/map_speed.py [--orders N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from crossdock.canonical import to_plain
from crossdock.canonical.order import Order
from crossdock.dsl.lint import lint

REPO = Path(__file__).resolve().parents[1]
WAREHOUSES = {"dallas": "DAL", "reno": "RNO"}
UNITS = {"ea": "each", "cs": "case", "pk": "pack"}


def sample_order(lines: int = 10) -> dict[str, Any]:
    """A web order in the store's shape, decoded as crossdock decodes it (floats as Decimal)."""
    raw = {
        "number": "1001",
        "created_at": "2026-11-20T09:15:00-06:00",
        "currency": "usd",
        "fulfillment": {"warehouse": "Dallas"},
        "customer": {"id": "C-77", "first_name": "Ana", "last_name": "Ruiz", "email": "ana@example.com"},
        "shipping_address": {"name": "Ana Ruiz", "address1": "12 Elm St", "city": "Austin",
                             "province_code": "TX", "zip": "73301", "country_code": "us"},
        "line_items": [{"sku": f"SKU-{i}", "title": f"Item {i}", "quantity": 1 + i % 4, "unit": "EA",
                        "price": f"{3 + i}.25"} for i in range(lines)],
        "shipping_total": "7.50",
        "tax_total": "5.93",
    }
    return json.loads(json.dumps(raw), parse_float=Decimal)


def by_hand(order: dict[str, Any]) -> dict[str, Any]:
    """The demo map written directly in Python, with the same missing-value rules."""
    out: dict[str, Any] = {"po_number": "WEB-" + order["number"], "order_date": order["created_at"][:10]}
    currency = order.get("currency")
    out["currency"] = currency.upper() if currency else "USD"
    out["channel"] = "webstore"
    warehouse = (order.get("fulfillment") or {}).get("warehouse")
    out["ship_from"] = WAREHOUSES.get(warehouse.lower()) if warehouse else None
    if out["ship_from"] is None:
        out["ship_from"] = "UNASSIGNED"
    customer = order.get("customer")
    if customer:
        out["customer"] = {"id": customer["id"], "name": f"{customer['first_name']} {customer['last_name']}",
                           "email": customer["email"]}
    address = order["shipping_address"]
    ship_to_address = {"line1": address["address1"], "city": address["city"], "region": address["province_code"],
                       "postal_code": address["zip"], "country": address["country_code"].upper()}
    if address.get("address2"):
        ship_to_address["line2"] = address["address2"]
    out["ship_to"] = {"name": address["name"], "address": ship_to_address}
    lines = []
    for index, item in enumerate(order["line_items"], start=1):
        quantity = Decimal(str(item["quantity"]))
        price = Decimal(str(item["price"]))
        lines.append({"line_number": index, "sku": item["sku"], "description": item["title"],
                      "quantity": quantity, "unit": UNITS.get(item.get("unit", "").lower(), "each"),
                      "unit_price": price, "amount": quantity * price})
    out["lines"] = lines
    out["subtotal"] = sum((line["amount"] for line in lines), Decimal(0))
    out["shipping"] = Decimal(order["shipping_total"]) if order.get("shipping_total") else Decimal(0)
    out["tax"] = Decimal(order["tax_total"]) if order.get("tax_total") else Decimal(0)
    out["total"] = out["subtotal"] + out["shipping"] + out["tax"]
    return out


def rate(work: Any, order: dict[str, Any], count: int, repeat: int) -> float:
    """Best maps per second over `repeat` rounds of `count` maps."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(count):
            work(order)
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    result = lint([REPO / "routes"])
    assert result.plan is not None and not result.errors, result.errors
    compiled = result.plan.maps["Web order to Order"]
    order = sample_order()
    crossdock_out = to_plain(Order.model_validate(compiled.run(order)))
    hand_out = to_plain(Order.model_validate(by_hand(order)))
    assert crossdock_out == hand_out, "the two mappings disagree; fix the benchmark before timing it"

    def hand_validated(doc: dict[str, Any]) -> dict[str, Any]:
        return to_plain(Order.model_validate(by_hand(doc)))

    rows = [
        ("map only", rate(by_hand, order, args.orders, args.repeat),
         rate(compiled.run, order, args.orders, args.repeat)),
        ("map + validate", rate(hand_validated, order, args.orders, args.repeat),
         rate(compiled.run_validated, order, args.orders, args.repeat)),
    ]
    print(f"demo map on a {len(order['line_items'])}-line order, {args.orders} maps x {args.repeat} rounds (best)")
    print(f"{'':16}{'hand-written':>14}{'crossdock':>12}{'ratio':>8}")
    for label, hand, ours in rows:
        print(f"{label:16}{hand:>11,.0f}/s{ours:>9,.0f}/s{ours / hand:>8.2f}")


if __name__ == "__main__":
    main()
