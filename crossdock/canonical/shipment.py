"""The canonical shipment (advance ship notice): what left the warehouse, in which packages, for which orders.

Built from a WMS or 3PL confirmation; sent as an X12 856 to the customer and to the ERP to close the
order. Packages carry their lines so that a customer can receive carton by carton (SSCC labels).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from crossdock.canonical.common import (
    WEIGHT_UNITS,
    CanonicalModel,
    IsoDate,
    NonNegativeQuantity,
    Party,
    Quantity,
    Sscc,
    Text,
    Unit,
)


class ShipmentLine(CanonicalModel):
    """A quantity of one item in a package."""

    sku: Text
    quantity: Quantity
    unit: Unit
    po_number: Text | None = None
    """The order this quantity ships against, when the shipment covers several."""
    line_number: int | None = Field(default=None, ge=1)
    """The order line this quantity ships against."""


class Package(CanonicalModel):
    """One carton or pallet."""

    package_id: Text | None = None
    """The shipper's own package reference."""
    sscc: Sscc | None = None
    tracking_number: Text | None = None
    weight: NonNegativeQuantity | None = None
    weight_unit: Unit | None = None
    """kg, g, lb or oz; required with a weight."""
    lines: list[ShipmentLine] = Field(min_length=1)

    @model_validator(mode="after")
    def _weight_has_unit(self) -> Package:
        if self.weight is not None and self.weight_unit is None:
            raise ValueError("weight_unit is required when weight is given")
        if self.weight_unit is not None and self.weight_unit not in WEIGHT_UNITS:
            allowed = ", ".join(sorted(u.value for u in WEIGHT_UNITS))
            raise ValueError(f"weight_unit '{self.weight_unit.value}' is not a unit of weight; use {allowed}")
        return self


class Shipment(CanonicalModel):
    """An advance ship notice: one departure from one location to one destination.

    Every line's po_number, when given, must be one of the shipment's po_numbers.
    """

    shipment_id: Text
    """The shipper's shipment number (BSN02 of an 856)."""
    po_numbers: list[Text] = Field(min_length=1)
    """The orders this shipment fills."""
    ship_date: IsoDate
    estimated_delivery_date: IsoDate | None = None
    carrier: Text | None = None
    """The carrier's SCAC code or name."""
    service: Text | None = None
    """The service level ("ground", "2day")."""
    bill_of_lading: Text | None = None
    tracking_numbers: list[Text] = Field(default_factory=list)
    """Shipment-level tracking (a pro number for freight); package tracking sits on each package."""
    ship_from: Party
    ship_to: Party
    packages: list[Package] = Field(min_length=1)

    @model_validator(mode="after")
    def _lines_name_known_orders(self) -> Shipment:
        known = set(self.po_numbers)
        for index, package in enumerate(self.packages):
            for line in package.lines:
                if line.po_number is not None and line.po_number not in known:
                    raise ValueError(
                        f"packages[{index}]: po_number '{line.po_number}' of sku '{line.sku}' is not one "
                        f"of the shipment's po_numbers"
                    )
        return self
