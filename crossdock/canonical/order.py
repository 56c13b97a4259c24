"""The canonical purchase order: what a customer, web store or marketplace asks the distributor to ship.

Built from an X12 850, a web-store order or an ERP export; sent to the ERP, the WMS or a 3PL. When a
document states line amounts or totals they must add up (see :class:`Order`), so that a map that
picked the wrong element is caught before the ERP books the order.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, model_validator

from crossdock.canonical.common import (
    CanonicalModel,
    CurrencyCode,
    Gtin,
    IsoDate,
    NonNegativeMoney,
    Party,
    Quantity,
    Text,
    Unit,
    check_amount,
    check_line_numbers,
    check_total,
    plain_decimal,
)


class OrderLine(CanonicalModel):
    """One ordered item."""

    line_number: int = Field(ge=1)
    """The line's number in the customer's document (PO101), echoed on the ASN and the invoice."""
    sku: Text
    """The distributor's item number."""
    buyer_sku: Text | None = None
    """The customer's own item number, when the customer sends one."""
    gtin: Gtin | None = None
    """UPC or EAN of the item."""
    description: Text | None = None
    quantity: Quantity
    unit: Unit
    unit_price: NonNegativeMoney | None = None
    amount: NonNegativeMoney | None = None
    """quantity × unit_price, as the customer stated it."""
    requested_date: IsoDate | None = None
    """The day the customer wants this line delivered, when it differs from the order's."""

    @model_validator(mode="after")
    def _amount_matches(self) -> OrderLine:
        if self.amount is not None and self.unit_price is not None:
            check_amount(self.quantity, self.unit_price, self.amount)
        return self


class Order(CanonicalModel):
    """A purchase order.

    Consistency checks, each naming the field at fault: a line's amount equals quantity × unit_price
    when both are given (see :func:`~crossdock.canonical.common.amounts_agree` for rounding); the
    subtotal equals the sum of line amounts when every line states one; the total equals subtotal +
    tax + shipping - discount when subtotal and total are given (an absent charge counts as 0).
    """

    po_number: Text
    """The customer's purchase order number: the business key of the order."""
    order_date: IsoDate
    currency: CurrencyCode = "USD"
    channel: Text | None = None
    """Where the order came from ("edi:acme", "shopify", "amazon")."""
    customer: Party | None = None
    """Who ordered (the sold-to or buying party)."""
    ship_to: Party
    bill_to: Party | None = None
    ship_from: Text | None = None
    """The warehouse code to ship from, when the customer or a routing rule chose one."""
    requested_ship_date: IsoDate | None = None
    requested_delivery_date: IsoDate | None = None
    cancel_after: IsoDate | None = None
    """Do not ship after this day (X12 DTM 001)."""
    notes: Text | None = None
    lines: list[OrderLine] = Field(min_length=1)
    subtotal: NonNegativeMoney | None = None
    discount: NonNegativeMoney | None = None
    """Order-level allowances, as a positive amount taken off."""
    tax: NonNegativeMoney | None = None
    shipping: NonNegativeMoney | None = None
    total: NonNegativeMoney | None = None

    @model_validator(mode="after")
    def _totals_add_up(self) -> Order:
        check_line_numbers([line.line_number for line in self.lines], "order lines")
        amounts = [line.amount for line in self.lines]
        if self.subtotal is not None and all(a is not None for a in amounts):
            computed = sum((a for a in amounts if a is not None), Decimal(0))
            if self.subtotal != computed:
                raise ValueError(
                    f"subtotal {plain_decimal(self.subtotal)} does not equal the sum of line amounts "
                    f"{plain_decimal(computed)}"
                )
        if self.subtotal is not None and self.total is not None:
            charges = {"tax": self.tax, "shipping": self.shipping}
            check_total(self.total, self.subtotal, charges, self.discount)
        return self
