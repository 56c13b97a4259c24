"""The canonical inventory position: how much of an item one location holds and can promise.

Built from a WMS or ERP stock export (or an X12 846) and sent to web stores and marketplaces; one
position per item, location and (optionally) channel.
"""

from __future__ import annotations

from crossdock.canonical.common import (
    CanonicalModel,
    IsoDateTime,
    NonNegativeQuantity,
    SignedQuantity,
    Text,
    Unit,
)


class InventoryPosition(CanonicalModel):
    """Stock of one item at one location at one moment."""

    sku: Text
    location: Text
    """The warehouse or store code."""
    on_hand: NonNegativeQuantity
    """Physically in the location."""
    available: SignedQuantity
    """What may still be promised; negative when orders already took more than is on hand."""
    allocated: NonNegativeQuantity | None = None
    """Reserved for open orders."""
    on_order: NonNegativeQuantity | None = None
    """Expected from open purchase orders."""
    unit: Unit
    as_of: IsoDateTime
    """When the figures were true in the source system."""
    channel: Text | None = None
    """The sales channel this position is published for, when stock is split by channel."""
