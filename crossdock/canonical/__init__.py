"""Canonical business objects: the shapes every map translates to and from.

Five documents travel between systems: :class:`Order`, :class:`InventoryPosition`,
:class:`Shipment`, :class:`Invoice` and :class:`PriceList`. Their parts (``OrderLine``, ``Address``,
``Party`` ...) are models too, so that a map may build or validate one piece. The rules they share
(exact Decimal money, ISO dates and codes, canonical units, unknown fields rejected) are described in
:mod:`crossdock.canonical.common`; the generated JSON Schemas live in ``schemas/canonical``.

The runtime keeps message bodies as plain data, so :func:`to_plain` turns a validated model back into
dicts and lists: Decimal stays Decimal (exact), dates become ISO text, units become their codes.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

from pydantic import BaseModel

from crossdock.canonical.common import Address, Party, Unit
from crossdock.canonical.inventory import InventoryPosition
from crossdock.canonical.invoice import Invoice, InvoiceLine, Terms
from crossdock.canonical.order import Order, OrderLine
from crossdock.canonical.pricelist import PriceItem, PriceList
from crossdock.canonical.shipment import Package, Shipment, ShipmentLine
from crossdock.dsl.diagnostics import did_you_mean

DOCUMENTS: tuple[type[BaseModel], ...] = (Order, InventoryPosition, Shipment, Invoice, PriceList)
"""The top-level documents, each with a JSON Schema in ``schemas/canonical``."""

MODELS: dict[str, type[BaseModel]] = {
    cls.__name__: cls
    for cls in (
        *DOCUMENTS,
        OrderLine,
        ShipmentLine,
        Package,
        InvoiceLine,
        Terms,
        PriceItem,
        Address,
        Party,
    )
}
"""Every canonical model by name, as a map's `to ...` line names it."""


class UnknownModel(LookupError):
    """No canonical model has that name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hint = did_you_mean(name, MODELS)
        super().__init__(f"unknown canonical model '{name}'" + (f"; {self.hint}" if self.hint else ""))


def model(name: str) -> type[BaseModel]:
    """The canonical model called `name`; raises :class:`UnknownModel` with a did-you-mean hint."""
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModel(name) from None


def to_plain(instance: BaseModel) -> dict[str, Any]:
    """`instance` as plain data: Decimal kept exact, date/datetime as ISO text, enums as their values.

    Fields that are None are left out: in a canonical document an absent field and a null one mean
    the same, and leaving them out keeps bodies and the expected files of map tests short.
    """
    return _plain(instance.model_dump(mode="python", exclude_none=True))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    # datetime is a subclass of date, so one check covers both.
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


__all__ = [
    "DOCUMENTS",
    "MODELS",
    "Address",
    "InventoryPosition",
    "Invoice",
    "InvoiceLine",
    "Order",
    "OrderLine",
    "Package",
    "Party",
    "PriceItem",
    "PriceList",
    "Shipment",
    "ShipmentLine",
    "Terms",
    "Unit",
    "UnknownModel",
    "model",
    "to_plain",
]
