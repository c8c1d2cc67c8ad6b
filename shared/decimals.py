"""Sane bounds for the decimal numbers Caravan takes from outside, and their checks.

`decimal.Decimal` reads `1E+999999`, `1E-999999` or ten thousand digits exactly,
but arithmetic on such a number overflows the context (decimal.Overflow),
underflows to zero, or cannot be rounded to the places asked (quantize raises
InvalidOperation). So every number from a provider's document, a request or a
stored document passes one of these checks before any arithmetic. Inside the
bounds every computation of the rate feed and the query service stays exact to
the 28 digits of the default context and far from its exponent limits:

- a provider's value or nominal lies within [1E-9, 1E+9] (real ones run from
  about 0.0001 to 100,000), so the value of one unit within [1E-18, 1E+18] and the
  quotient of two of those within [1E-36, 1E+36], before the rate check;
- a rate X/USD lies within [1E-9, 1E+9] (the sum, the smallest quoted, is about
  8E-5), so the daily change between two rates within ±1E+20 %, and the ticker's
  rate (five places) has at most 15 digits;
- a daily change lies within ±1E+21 % (two places: at most 24 digits);
- an amount to convert is 0 or within [1E-12, 1E+15], so a conversion
  (amount x rate / rate) is 0 or within [1E-30, 1E+33].
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Longest piece of an offending number quoted back in a message.
SHOWN_CHARACTERS = 32


class BadDecimal(ValueError):
    """Not a decimal number, or one outside the bounds Caravan computes with."""


@dataclass(frozen=True)
class Bounds:
    """Numbers from `low` to `high`, and zero as well where `zero` says so."""

    what: str
    low: Decimal
    high: Decimal
    zero: bool = False

    def __str__(self) -> str:
        return f"{'0 or ' if self.zero else ''}between {self.low} and {self.high}"


AMOUNT = Bounds("amount", Decimal("1E-12"), Decimal("1E+15"), zero=True)
PROVIDER_VALUE = Bounds("provider value", Decimal("1E-9"), Decimal("1E+9"))
RATE = Bounds("rate", Decimal("1E-9"), Decimal("1E+9"))
CHANGE_PCT = Bounds("change in percent", Decimal("-1E+21"), Decimal("1E+21"))


def shown(text: object) -> str:
    """`text` quoted for a message, shortened: an offending number may be megabytes long."""
    raw = str(text)
    return repr(raw if len(raw) <= SHOWN_CHARACTERS else f"{raw[:SHOWN_CHARACTERS]}...")


# Decimal places at most. A rate made by division has 28 significant digits, down to
# 1E-9: 37 places. `1E-50000000` lies within a change's bounds, and written out in full
# (as events write decimals) it was a 50 MB document, past the indexer's memory.
MOST_PLACES = 60


def within(value: Decimal, bounds: Bounds) -> Decimal:
    """`value` itself if it lies within the bounds, else BadDecimal saying the bounds."""
    # Comparisons are exact and never round, so they are safe on any finite decimal.
    if value.is_finite():
        if bounds.zero and value.is_zero():
            # Plain 0: `0E+999999` is zero too, with an exponent no arithmetic wants.
            return Decimal(0)
        if bounds.low <= value <= bounds.high:
            if -int(value.as_tuple().exponent) <= MOST_PLACES:
                return value
            if value.is_zero():
                return Decimal(0)
            msg = f"{bounds.what} has more than {MOST_PLACES} decimal places: {shown(value)}"
            raise BadDecimal(msg)
    msg = f"{bounds.what} must be {bounds}, not {shown(value)}"
    raise BadDecimal(msg)


def parse_within(text: str, bounds: Bounds) -> Decimal:
    """The decimal `text` writes, if it lies within the bounds; else BadDecimal."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        msg = f"{bounds.what} must be a decimal number, not {shown(text)}"
        raise BadDecimal(msg) from exc
    return within(value, bounds)


def read_within(stored: object, bounds: Bounds) -> Decimal:
    """A decimal string read back from storage, checked like any other outside number."""
    if not isinstance(stored, str):
        msg = f"{bounds.what} must be a decimal string, not {shown(stored)}"
        raise BadDecimal(msg)
    return parse_within(stored, bounds)
