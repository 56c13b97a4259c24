"""Checks for the X12 simple data types: DT dates, TM times, Nn implied-decimal and R decimal numbers.

Each function answers one question about one value's text, with no allocation beyond what the
standard library needs, because they run for every element of every segment.
"""

from __future__ import annotations

_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def is_date(text: str) -> bool:
    """True for a calendar date written YYMMDD or CCYYMMDD (the DT type)."""
    if len(text) not in (6, 8) or not text.isascii() or not text.isdigit():
        return False
    month, day = int(text[-4:-2]), int(text[-2:])
    if not 1 <= month <= 12 or day < 1 or day > _DAYS[month - 1]:
        return False
    if month == 2 and day == 29:
        # A two-digit year gives no century; any year divisible by 4 is taken as a leap year.
        year = int(text[:-4])
        return _leap(year) if len(text) == 8 else year % 4 == 0
    return True


def is_time(text: str) -> bool:
    """True for a time written HHMM, HHMMSS, HHMMSSd or HHMMSSdd (the TM type)."""
    if len(text) not in (4, 6, 7, 8) or not text.isascii() or not text.isdigit():
        return False
    if int(text[:2]) > 23 or int(text[2:4]) > 59:
        return False
    return len(text) == 4 or int(text[4:6]) <= 59


def numeric_digits(text: str) -> int | None:
    """Digits in an Nn value (optional leading minus, digits only), or None when it is not one."""
    body = text[1:] if text[:1] == "-" else text
    if not body or not body.isascii() or not body.isdigit():
        return None
    return len(body)


def decimal_digits(text: str) -> int | None:
    """Digits in an R value (optional minus, digits with at most one decimal point), or None.

    The length of an R value counts its digits only, not the sign or the decimal point. An exponent
    (``1.5E3``, allowed from version 00501) is accepted and its digits are not counted either.
    """
    body = text[1:] if text[:1] == "-" else text
    mantissa, marker, exponent = body.partition("E")
    if marker:
        exponent = exponent[1:] if exponent[:1] == "-" else exponent
        if not exponent or not exponent.isascii() or not exponent.isdigit():
            return None
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    return len(digits)
