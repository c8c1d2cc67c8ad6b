"""A pegged currency: the official rate holds every day, so there is no document to read.

The Central Bank of Turkmenistan has fixed the manat at 3.5 TMT per US dollar
since 1 January 2015. A pegged provider yields that rate dated the business day
it is asked for, in the bank's calendar: on a Saturday or Sunday the as-of date
is the Friday before, as a bank publishing daily would date it, so weekends
bring no new quote. Public holidays are not modelled. Before the peg took
effect it yields nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from services.ratefeed.parsers.parsing import is_currency_code
from services.ratefeed.providers import OfficialRates, RatesError


class Peg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str = Field(description="the pegged currency, e.g. TMT")
    per_usd: Decimal = Field(gt=0, description="units of it per US dollar")
    since: date = Field(description="the first day of the peg")


def pegged_rates(provider: str, peg: Peg, on: date) -> OfficialRates:
    if not is_currency_code(peg.currency):
        msg = f"{provider}: bad pegged currency {peg.currency!r}"
        raise RatesError(msg)
    if on < peg.since:
        msg = f"{provider}: {peg.currency} is pegged only since {peg.since}, not on {on}"
        raise RatesError(msg)
    business_day = on - timedelta(days=max(0, on.weekday() - 4))
    return OfficialRates(provider, peg.currency, business_day, {"USD": peg.per_usd})
