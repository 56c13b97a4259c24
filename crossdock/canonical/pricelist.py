"""The canonical price list: what items cost, from which day, for which channel or customer.

Built from the ERP's price file; sent to web stores, marketplaces and customers (X12 832). Quantity
breaks are separate items of the same sku and unit with different min_quantity.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, model_validator

from crossdock.canonical.common import (
    CanonicalModel,
    CurrencyCode,
    IsoDate,
    NonNegativeMoney,
    Quantity,
    Text,
    Unit,
    plain_decimal,
)


class PriceItem(CanonicalModel):
    """The price of one item in one unit, from a minimum quantity."""

    sku: Text
    unit: Unit
    unit_price: NonNegativeMoney
    min_quantity: Quantity | None = None
    """The quantity break this price starts at; absent means from 1."""
    msrp: NonNegativeMoney | None = None
    """The manufacturer's suggested retail price."""


class PriceList(CanonicalModel):
    """A price list: each (sku, unit, min_quantity) appears once; expires is not before effective_date."""

    price_list_id: Text
    currency: CurrencyCode
    effective_date: IsoDate
    expires: IsoDate | None = None
    """The last day the prices hold."""
    channel: Text | None = None
    customer_id: Text | None = None
    """The customer these prices are for, when the list is customer-specific."""
    items: list[PriceItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> PriceList:
        if self.expires is not None and self.expires < self.effective_date:
            raise ValueError(f"expires {self.expires} is before effective_date {self.effective_date}")
        seen: set[tuple[str, str, Decimal]] = set()
        for item in self.items:
            key = (item.sku, item.unit.value, item.min_quantity or Decimal(1))
            if key in seen:
                raise ValueError(
                    f"items: sku '{item.sku}' in unit '{item.unit.value}' from quantity "
                    f"{plain_decimal(key[2])} is priced twice"
                )
            seen.add(key)
        return self
