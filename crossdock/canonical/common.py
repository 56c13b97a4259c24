"""Types shared by every canonical business object: money, quantities, codes, units, parties.

Rules that hold for every canonical model:

- Money and quantities are :class:`~decimal.Decimal`, never float. Input may be text, an int or a
  Decimal ("0.10" stays ``Decimal('0.10')``); NaN and Infinity are rejected. In JSON they are written
  as strings of their exact digits ("12.50"), which is what the JSON Schemas in ``schemas/canonical``
  describe.
- Dates are :class:`datetime.date` and timestamps :class:`datetime.datetime`, read from ISO 8601 text
  only: a number is never taken as a Unix time, because a map that forgot `date(...)` would otherwise
  turn "20240105" into a day in 1970.
- Currencies are ISO 4217 codes and countries ISO 3166-1 alpha-2 codes, upper case. The models check
  the shape (three or two letters), not membership in the ISO lists, which change every year.
- Units of measure are the canonical codes of :class:`Unit`; :data:`X12_UNITS` translates X12 codes
  (element 355) for maps, :data:`UNIT_TO_X12` translates back.
- Unknown fields are errors (``extra="forbid"``): a misspelt field in a map fails loudly instead of
  being dropped on the way to the ERP.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)

# What a Decimal looks like in JSON: plain digits, never an exponent (see `_plain_decimal`).
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
UNSIGNED_DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"


def plain_decimal(value: Decimal) -> str:
    """The exact digits of `value`, never an exponent: Decimal('1E+2') -> "100", Decimal('0.10') -> "0.10"."""
    return format(value, "f")


def _decimal_json(pattern: str, description: str) -> Any:
    # JSON output writes the digits as a string so that no consumer ever parses money into a float;
    # the return type is what `model_json_schema(mode="serialization")` publishes.
    return PlainSerializer(
        plain_decimal,
        return_type=Annotated[str, StringConstraints(pattern=pattern)],
        when_used="json",
    ), Field(description=description)


Money = Annotated[Decimal, *_decimal_json(DECIMAL_PATTERN, "An exact decimal amount, for example \"12.50\".")]
"""An amount of money; may be negative (credits, adjustments)."""

NonNegativeMoney = Annotated[
    Decimal, Field(ge=0), *_decimal_json(UNSIGNED_DECIMAL_PATTERN, "An exact decimal amount, 0 or more.")
]
"""A price, a charge or a total: 0 or more."""

Quantity = Annotated[
    Decimal, Field(gt=0), *_decimal_json(UNSIGNED_DECIMAL_PATTERN, "An exact decimal quantity, more than 0.")
]
"""A quantity ordered, shipped or invoiced: more than 0 (a zero line is a cancellation, not a line)."""

NonNegativeQuantity = Annotated[
    Decimal, Field(ge=0), *_decimal_json(UNSIGNED_DECIMAL_PATTERN, "An exact decimal quantity, 0 or more.")
]
"""A stock figure or a weight: 0 or more."""

SignedQuantity = Annotated[
    Decimal, *_decimal_json(DECIMAL_PATTERN, "An exact decimal quantity; may be negative.")
]
"""A stock figure that may go below zero (available stock when orders are over-allocated)."""

Percent = Annotated[
    Decimal, Field(ge=0, le=100), *_decimal_json(UNSIGNED_DECIMAL_PATTERN, "A percentage from 0 to 100.")
]
"""A percentage such as a prompt-payment discount: 2 means 2 %."""


def _iso_only(value: Any) -> Any:
    # pydantic would read an int as a Unix timestamp; canonical dates come from ISO text only.
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        raise ValueError("dates are ISO 8601 text such as \"2024-01-05\", not numbers")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_only)]
"""A calendar day, ISO 8601 ("2024-01-05")."""

IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_only)]
"""A timestamp, ISO 8601 ("2024-01-05T14:30:00Z"); without an offset it is the sender's local time."""

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
"""Text that must say something: surrounding spaces are dropped (X12 pads), empty text is an error."""

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), Field(examples=["USD"])]
"""An ISO 4217 currency code: three upper-case letters."""

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), Field(examples=["US"])]
"""An ISO 3166-1 alpha-2 country code: two upper-case letters."""

Gln = Annotated[str, StringConstraints(pattern=r"^[0-9]{13}$")]
"""A GS1 Global Location Number: 13 digits."""

Gtin = Annotated[str, StringConstraints(pattern=r"^([0-9]{8}|[0-9]{12,14})$")]
"""A GS1 trade item number: GTIN-8, UPC-A (12), EAN-13 or GTIN-14."""

Sscc = Annotated[str, StringConstraints(pattern=r"^[0-9]{18}$")]
"""A GS1 Serial Shipping Container Code (the carton label of an ASN): 18 digits."""

Email = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
"""An e-mail address; only its shape is checked."""


class Unit(StrEnum):
    """The canonical units of measure.

    Counting units: each, case, pack, pallet, box, dozen, pair, set, roll. Weights: kg, g, lb, oz.
    Volumes: l, ml. Lengths: m, cm, ft, in. Maps translate partner codes into these, for X12 with
    :data:`X12_UNITS`.
    """

    EACH = "each"
    CASE = "case"
    PACK = "pack"
    PALLET = "pallet"
    BOX = "box"
    DOZEN = "dozen"
    PAIR = "pair"
    SET = "set"
    ROLL = "roll"
    KILOGRAM = "kg"
    GRAM = "g"
    POUND = "lb"
    OUNCE = "oz"
    LITER = "l"
    MILLILITER = "ml"
    METER = "m"
    CENTIMETER = "cm"
    FOOT = "ft"
    INCH = "in"


WEIGHT_UNITS: frozenset[Unit] = frozenset({Unit.KILOGRAM, Unit.GRAM, Unit.POUND, Unit.OUNCE})
"""The units a package weight may be given in."""

X12_UNITS: dict[str, Unit] = {
    "EA": Unit.EACH,
    "PC": Unit.EACH,  # "Piece": partners use it interchangeably with EA
    "CA": Unit.CASE,
    "PK": Unit.PACK,  # "Package"
    "PL": Unit.PALLET,  # "Pallet/Unit Load"
    "BX": Unit.BOX,
    "DZ": Unit.DOZEN,
    "PR": Unit.PAIR,
    "ST": Unit.SET,  # X12 "SE" is "Section", not set
    "RL": Unit.ROLL,
    "KG": Unit.KILOGRAM,
    "GR": Unit.GRAM,
    "LB": Unit.POUND,
    "OZ": Unit.OUNCE,  # "Ounce - Av"
    "LT": Unit.LITER,
    "ML": Unit.MILLILITER,
    "MR": Unit.METER,
    "CM": Unit.CENTIMETER,
    "FT": Unit.FOOT,
    "IN": Unit.INCH,
}
"""X12 element 355 (unit or basis for measurement) codes to canonical units.

Only standard codes with one unambiguous meaning are here; partner habits (many send "CS" for case,
which X12 does not define that way) belong in a `table` of the partner's map.
"""

UNIT_TO_X12: dict[Unit, str] = {unit: code for code, unit in X12_UNITS.items() if code != "PC"}
"""Canonical units to the X12 code to send (EA for each, never the PC synonym)."""


class CanonicalModel(BaseModel):
    """Base of every canonical model: unknown fields are errors; field docstrings become descriptions."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


def decimal_places(value: Decimal) -> int:
    """How many digits `value` states after the point ("12.50" -> 2, "3" -> 0)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def amounts_agree(stated: Decimal, computed: Decimal) -> bool:
    """True when a stated amount matches a computed one as a document would write it.

    Documents round line amounts to the currency: 3 x 0.3333 is stated as 1.00. So `stated` agrees
    when it equals `computed` exactly, or `computed` rounded half-up to the places `stated` shows
    (at least 2, so that a whole-number "12" cannot hide a computed 12.40).
    """
    if stated == computed:
        return True
    places = max(decimal_places(stated), 2)
    return stated == computed.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def check_line_numbers(numbers: list[int], what: str) -> None:
    """Raise ValueError naming the first line number used twice."""
    seen: set[int] = set()
    for number in numbers:
        if number in seen:
            raise ValueError(f"line_number {number} is used by two {what}")
        seen.add(number)


def check_amount(quantity: Decimal, unit_price: Decimal, amount: Decimal) -> None:
    """Raise ValueError when a line's amount is not quantity × unit_price."""
    computed = quantity * unit_price
    if not amounts_agree(amount, computed):
        raise ValueError(
            f"amount {plain_decimal(amount)} does not equal quantity × unit_price = {plain_decimal(computed)}"
        )


def check_total(
    total: Decimal, subtotal: Decimal, charges: dict[str, Decimal | None], discount: Decimal | None
) -> None:
    """Raise ValueError when `total` is not subtotal + charges - discount (absent ones count as 0)."""
    computed = subtotal + sum((c for c in charges.values() if c is not None), Decimal(0)) - (discount or 0)
    if total != computed:
        terms = " + ".join(["subtotal", *charges]) + " - discount"
        raise ValueError(
            f"total {plain_decimal(total)} does not equal {terms} = {plain_decimal(computed)}"
            " (absent charges and discount count as 0)"
        )


class Address(CanonicalModel):
    """A postal address."""

    line1: Text
    """Street and number."""
    line2: Text | None = None
    """Suite, building, attention line."""
    line3: Text | None = None
    """A third line where the country's format needs one."""
    city: Text
    region: Text | None = None
    """State, province or county code ("TX")."""
    postal_code: Text | None = None
    country: CountryCode
    """ISO 3166-1 alpha-2 code ("US")."""


class Party(CanonicalModel):
    """A customer, ship-to location, warehouse or remit-to party."""

    id: Text | None = None
    """The party's code in the system of record (customer number, store number, DC code)."""
    name: Text
    address: Address | None = None
    contact: Text | None = None
    """The person to ask for."""
    email: Email | None = None
    phone: Text | None = None
    gln: Gln | None = None
    """GS1 Global Location Number, when the partner identifies locations by GLN."""
