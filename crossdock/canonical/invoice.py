"""The canonical invoice: what the distributor bills for an order it shipped.

Built from the ERP's billing run; sent as an X12 810 or to a customer portal. Unlike an order, an
invoice always states its amounts, and they must add up to the cent.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, model_validator

from crossdock.canonical.common import (
    CanonicalModel,
    CurrencyCode,
    IsoDate,
    NonNegativeMoney,
    Party,
    Percent,
    Quantity,
    Text,
    Unit,
    check_amount,
    check_line_numbers,
    check_total,
    plain_decimal,
)


class Terms(CanonicalModel):
    """Payment terms such as "2% 10, net 30"."""

    net_days: int = Field(ge=0)
    """Days after the invoice date by which the full amount is due."""
    discount_percent: Percent | None = None
    discount_days: int | None = Field(default=None, ge=0)
    """Days within which paying earns the discount."""

    @model_validator(mode="after")
    def _discount_complete(self) -> Terms:
        if (self.discount_percent is None) != (self.discount_days is None):
            raise ValueError("discount_percent and discount_days go together: give both or neither")
        if self.discount_days is not None and self.discount_days > self.net_days:
            raise ValueError(f"discount_days {self.discount_days} is later than net_days {self.net_days}")
        return self


class InvoiceLine(CanonicalModel):
    """One billed item; amount must equal quantity × unit_price (rounded as the document shows it)."""

    line_number: int = Field(ge=1)
    sku: Text
    description: Text | None = None
    quantity: Quantity
    unit: Unit
    unit_price: NonNegativeMoney
    amount: NonNegativeMoney
    po_line_number: int | None = Field(default=None, ge=1)
    """The order line this bills, when it differs from line_number."""

    @model_validator(mode="after")
    def _amount_matches(self) -> InvoiceLine:
        check_amount(self.quantity, self.unit_price, self.amount)
        return self


class Invoice(CanonicalModel):
    """An invoice for one purchase order.

    subtotal must equal the sum of line amounts, and total must equal subtotal + tax + freight -
    discount (an absent charge counts as 0).
    """

    invoice_number: Text
    invoice_date: IsoDate
    po_number: Text
    currency: CurrencyCode
    bill_to: Party
    remit_to: Party | None = None
    ship_to: Party | None = None
    terms: Terms | None = None
    due_date: IsoDate | None = None
    lines: list[InvoiceLine] = Field(min_length=1)
    subtotal: NonNegativeMoney
    discount: NonNegativeMoney | None = None
    """Invoice-level allowances, as a positive amount taken off."""
    tax: NonNegativeMoney | None = None
    freight: NonNegativeMoney | None = None
    total: NonNegativeMoney

    @model_validator(mode="after")
    def _totals_add_up(self) -> Invoice:
        check_line_numbers([line.line_number for line in self.lines], "invoice lines")
        computed = sum((line.amount for line in self.lines), Decimal(0))
        if self.subtotal != computed:
            raise ValueError(
                f"subtotal {plain_decimal(self.subtotal)} does not equal the sum of line amounts "
                f"{plain_decimal(computed)}"
            )
        check_total(self.total, self.subtotal, {"tax": self.tax, "freight": self.freight}, self.discount)
        if self.due_date is not None and self.due_date < self.invoice_date:
            raise ValueError("due_date is before invoice_date")
        return self
