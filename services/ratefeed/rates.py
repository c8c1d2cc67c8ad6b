"""Rate maths: exact, in `decimal.Decimal`, with the default 28-digit context.

A quote X/USD is the value of one unit of X in US dollars:

    rate(X) = (Value_X / Nominal_X) / (Value_USD / Nominal_USD)

with both values in the provider's base currency (the base itself being 1). Daily change is
`(rate - previous) / previous * 100`, against the previous as-of date stored for
the same pair and provider (jumps.py decides which previous date counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from services.ratefeed.providers import OfficialRates, RatesError
from shared.decimals import MOST_PLACES, RATE, BadDecimal, within

LEAST_PLACE = Decimal(1).scaleb(-MOST_PLACES)


def usd_rates(rates: OfficialRates, currencies: tuple[str, ...]) -> dict[str, Decimal]:
    """X/USD for each wanted currency the document lists, its own base included.

    The base is worth one unit of itself, so a national bank's own currency comes
    out as 1 / (its rate of the dollar): KZT/USD = 1 / 334.41 from the NBK.
    """
    units = {**rates.per_unit, rates.base: Decimal(1)}
    usd = units.get("USD")
    if usd is None:
        msg = f"{rates.provider} document of {rates.as_of} has no USD rate"
        raise RatesError(msg)
    return {code: units[code] / usd for code in currencies if code in units}


def within_bounds(rates: dict[str, Decimal]) -> tuple[dict[str, Decimal], list[str]]:
    """The rates within the bounds of shared/decimals.py, and why the others are left out.

    Values and nominals are bounded when read, but a rate is a quotient of two of
    them: a value of 1E-9 against a dollar of 1E+9 is still no rate to publish.
    """
    kept: dict[str, Decimal] = {}
    problems: list[str] = []
    for code, rate in rates.items():
        try:
            kept[code] = within(rate, RATE)
        except BadDecimal as exc:
            problems.append(f"{code}/USD: {exc}")
    return kept, problems


def change_pct(rate: Decimal, previous: Decimal) -> Decimal:
    change = (rate - previous) / previous * 100
    # Two rates equal to fifty places differ by less than the contract writes (it refuses
    # more than MOST_PLACES places): no reader sees such a change, so it is rounded there.
    if -int(change.as_tuple().exponent) > MOST_PLACES:
        return change.quantize(LEAST_PLACE)
    return change


@dataclass(frozen=True)
class LastRate:
    as_of: date
    rate: Decimal
    previous_as_of: date | None = None
    previous_rate: Decimal | None = None
