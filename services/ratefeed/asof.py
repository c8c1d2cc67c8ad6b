"""As-of dates: whose calendar, how far ahead, how long a rate stays current.

An as-of date is the calendar date on which the provider says its rates take
effect, in the provider's own time zone (Moscow for the Bank of Russia, Almaty,
Bishkek, Tashkent, Dushanbe, Ashgabat for the others). It is never the fetch
time. The Bank of Russia publishes tomorrow's rates in the afternoon, so a date
up to `max_lead_days` after the provider's today is accepted; anything later is
a broken document. A provider's quotes are stale once its newest as-of date is
more than `stale_after_days` before today: enough to cover a weekend and a
public holiday without crying wolf.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.ratefeed.providers import OfficialRates, RatesError


def local_today(timezone: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


# The earliest official rate any of the region's banks publishes (the Bank of Russia's
# series starts on 1 July 1992; the som and the tenge came in 1993): a document dated
# before it is broken, and its date would overflow the catch-up's arithmetic.
EARLIEST_AS_OF = date(1992, 7, 1)


def check_as_of(official: OfficialRates, today: date, max_lead_days: int) -> None:
    """RatesError unless the as-of date is one a provider can mean."""
    if official.as_of < EARLIEST_AS_OF:
        msg = (
            f"{official.provider}: as-of date {official.as_of} is before any official "
            f"rate ({EARLIEST_AS_OF})"
        )
        raise RatesError(msg)
    if official.as_of > today + timedelta(days=max_lead_days):
        msg = (
            f"{official.provider}: as-of date {official.as_of} is in the future "
            f"(today is {today} in the provider's time zone)"
        )
        raise RatesError(msg)


def stale_after(as_of: date, stale_after_days: int) -> date:
    """The last day a rate of `as_of` is current if no newer one comes."""
    return as_of + timedelta(days=stale_after_days)


def days(since: date, until: date) -> Iterator[date]:
    day = since
    while day <= until:
        yield day
        day += timedelta(days=1)
