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
import functools
import types
import typing
from collections.abc import Callable
from decimal import Decimal
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
    return plain_converter(type(instance))(instance)


# ---- plain data ----------------------------------------------------------------------------------
# Every message that a map or `validate` step builds goes through to_plain, so it is built for speed:
# walking every value of the dump in Python to find dates and enums costs more than validating a
# 10-line Order. A model's field types say where dates and enums can be, so a converter is built once
# per model: it dumps in pydantic's Rust code and then touches only those fields.

_Fix = Callable[[Any], Any]


@functools.cache
def plain_converter(model: type[BaseModel]) -> Callable[[BaseModel], dict[str, Any]]:
    """The function :func:`to_plain` uses for instances of `model` (built once per model)."""
    fix = _model_fix(model, frozenset())

    def convert(instance: BaseModel) -> dict[str, Any]:
        data = instance.model_dump(mode="python", exclude_none=True)
        return data if fix is None else fix(data)

    return convert


def _plain_value(value: Any) -> Any:
    """The general walk, for fields whose type does not say where dates and enums are (Any, dict)."""
    if isinstance(value, dict):
        return {key: _plain_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_value(item) for item in value]
    if isinstance(value, dt.date):  # datetime too
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def _enum_value(value: Any) -> Any:
    # `_value_` is the attribute behind the `value` property, without the descriptor's cost
    return value._value_ if isinstance(value, Enum) else value


# Types whose dumped values are plain already.
_PLAIN_TYPES = (str, int, float, bool, Decimal)


def _model_fix(model: type[BaseModel], seen: frozenset[type]) -> _Fix | None:
    """What to change in a dumped `model` (None: nothing); `seen` stops at a model that contains itself."""
    if model in seen or model.model_config.get("extra") == "allow":
        return _plain_value
    seen = seen | {model}
    fixes = tuple(
        (name, fix) for name, info in model.model_fields.items()
        if (fix := _type_fix(info.annotation, seen)) is not None
    )
    if not fixes:
        return None

    def fix_model(data: Any) -> Any:
        if type(data) is dict:
            for name, fix in fixes:
                value = data.get(name)
                if value is not None:
                    data[name] = fix(value)
        return data

    return fix_model


def _type_fix(annotation: Any, seen: frozenset[type]) -> _Fix | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_fix(typing.get_args(annotation)[0], seen)
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        fixes = [_type_fix(member, seen) for member in members]
        if all(fix is None for fix in fixes):
            return None
        return fixes[0] if len(members) == 1 else _plain_value
    if origin is list:
        (item_type,) = typing.get_args(annotation) or (Any,)
        item = _type_fix(item_type, seen)
        if item is None:
            return None
        return lambda value: [item(element) for element in value] if type(value) is list else value
    if isinstance(annotation, type) and origin is None:
        if issubclass(annotation, BaseModel):
            return _model_fix(annotation, seen)
        if issubclass(annotation, Enum):
            return _enum_value
        if issubclass(annotation, dt.date):
            return _iso
        if issubclass(annotation, _PLAIN_TYPES):
            return None
    return _plain_value


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
    "plain_converter",
    "to_plain",
]
