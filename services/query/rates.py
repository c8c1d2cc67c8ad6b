"""Rate history, currency conversion and the currency list: query bodies and their shaping.

Every rate is X/USD, stored as an exact decimal string and answered rounded to
a fixed number of significant digits. A conversion goes through the dollar:
amount x (from/USD) / (to/USD), computed exactly from two rates of one as-of
date (the one asked, else the newest both currencies have before it, within a
window), each its primary provider's where there is one that day. History
buckets hold the rate of the last as-of date in each day, week (Monday first)
or month.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.query.quotes import (
    CANDIDATES,
    NEWEST_FIRST,
    choose_quote,
    significant,
    usable_sources,
)
from shared.index import CURRENCIES, QuoteSource

Interval = Literal["day", "week", "month"]
QUOTE_CURRENCY = "USD"
CURRENCY_NAMES = {
    "KGS": "Kyrgyz som",
    "KZT": "Kazakhstani tenge",
    "TJS": "Tajikistani somoni",
    "UZS": "Uzbekistani sum",
    "TMT": "Turkmenistani manat",
    "USD": "US dollar",
}


class UnknownCurrency(ValueError):
    pass


class HistoryPoint(BaseModel):
    period: str
    as_of: str
    rate: str
    change_pct: str | None
    provider: str
    flags: list[str]


class History(BaseModel):
    base: str
    quote: str
    interval: Interval
    points: list[HistoryPoint]


class UsedRate(BaseModel):
    base: str
    rate: str
    as_of: str | None
    provider: str | None


class Conversion(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    amount: str
    result: str
    as_of: str | None
    """The one as-of date of the rates used (None when both sides are US dollars)."""
    rates: list[UsedRate]


class Currency(BaseModel):
    code: str
    name: str
    providers: list[str]
    latest_as_of: str | None


class Currencies(BaseModel):
    quote: str
    currencies: list[Currency]


def check_currency(code: str) -> str:
    code = code.upper()
    if code not in CURRENCY_NAMES:
        msg = f"unknown currency {code!r}: known are {', '.join(CURRENCY_NAMES)}"
        raise UnknownCurrency(msg)
    return code


def _as_of_range(start: date | None, end: date | None) -> list[dict[str, Any]]:
    bounds = {k: v.isoformat() for k, v in (("gte", start), ("lte", end)) if v is not None}
    return [{"range": {"as_of": bounds}}] if bounds else []


def build_history(
    base: str, start: date | None, end: date | None, interval: Interval, provider: str | None = None
) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [{"term": {"base": base}}, *_as_of_range(start, end)]
    if provider is not None:
        filters.append({"term": {"provider": provider}})
    return {
        "size": 0,
        "query": {"bool": {"filter": filters}},
        "aggs": {
            "periods": {
                "date_histogram": {
                    "field": "as_of",
                    "calendar_interval": interval,
                    "min_doc_count": 1,
                    "format": "yyyy-MM-dd",
                },
                "aggs": {"last": {"top_hits": {"size": CANDIDATES, "sort": NEWEST_FIRST}}},
            }
        },
    }


def shape_history(response: dict[str, Any], base: str, interval: Interval, digits: int) -> History:
    points = []
    for bucket in response.get("aggregations", {}).get("periods", {}).get("buckets", []):
        sources = usable_sources(bucket["last"]["hits"]["hits"])
        if not sources:
            continue
        chosen = choose_quote(sources, None)
        change = chosen.get("change_pct")
        points.append(
            HistoryPoint(
                period=bucket["key_as_string"],
                as_of=chosen["as_of"],
                rate=significant(Decimal(chosen["rate"]), digits),
                change_pct=significant(Decimal(change), digits) if change is not None else None,
                provider=chosen["provider"],
                flags=chosen.get("flags", []),
            )
        )
    return History(base=base, quote=QUOTE_CURRENCY, interval=interval, points=points)


def build_newest(bases: list[str], on: date | None) -> dict[str, Any]:
    """The newest quotes of each currency on or before `on` (or ever)."""
    return {
        "size": 0,
        "query": {"bool": {"filter": [{"terms": {"base": bases}}, *_as_of_range(None, on)]}},
        "aggs": {
            "by_base": {
                "terms": {"field": "base", "size": max(1, len(bases))},
                "aggs": {"latest": {"top_hits": {"size": CANDIDATES, "sort": NEWEST_FIRST}}},
            }
        },
    }


def newest_date(response: dict[str, Any]) -> date | None:
    """The newest as-of date of any currency in a build_newest answer."""
    dates = [
        date.fromisoformat(source["as_of"])
        for bucket in response.get("aggregations", {}).get("by_base", {}).get("buckets", [])
        for source in usable_sources(bucket["latest"]["hits"]["hits"])
    ]
    return max(dates, default=None)


def window(anchor: date, days: int) -> tuple[date, date]:
    # Not before the calendar's first day: an anchor in year 1's first days overflowed.
    return date.fromordinal(max(1, anchor.toordinal() - days)), anchor


def build_rates_between(bases: list[str], start: date, end: date, providers: int) -> dict[str, Any]:
    """Every quote of the currencies dated within [start, end], newest first."""
    days = (end - start).days + 1
    return {
        "size": min(10_000, len(bases) * providers * days),
        "query": {"bool": {"filter": [{"terms": {"base": bases}}, *_as_of_range(start, end)]}},
        "sort": NEWEST_FIRST,
    }


def common_rates(
    response: dict[str, Any], bases: list[str]
) -> tuple[date, dict[str, QuoteSource]] | None:
    """The newest as-of date on which every currency has a quote, and the quote chosen
    for each on it (its primary provider's where current), or None."""
    by_day: dict[date, dict[str, list[QuoteSource]]] = {}
    for source in usable_sources(response.get("hits", {}).get("hits", [])):
        day = date.fromisoformat(source["as_of"])
        by_day.setdefault(day, {}).setdefault(source["base"], []).append(source)
    for day in sorted(by_day, reverse=True):
        quotes = by_day[day]
        if all(base in quotes for base in bases):
            return day, {base: choose_quote(quotes[base], day) for base in bases}
    return None


def convert(
    amount: Decimal,
    source: str,
    target: str,
    on: date | None,
    quotes: dict[str, QuoteSource],
    digits: int,
) -> Conversion:
    """Exact through the dollar; the answer's numbers rounded to `digits`."""
    used = [(code, _exact(code, quotes)) for code in dict.fromkeys((source, target))]
    rate = dict(used)
    return Conversion(
        from_=source,
        to=target,
        amount=str(amount),
        result=significant(amount * rate[source] / rate[target], digits),
        as_of=on.isoformat() if on else None,
        rates=[
            UsedRate(
                base=code,
                rate=significant(exact, digits),
                as_of=quotes[code]["as_of"] if code in quotes else None,
                provider=quotes[code]["provider"] if code in quotes else None,
            )
            for code, exact in used
        ],
    )


def _exact(code: str, quotes: dict[str, QuoteSource]) -> Decimal:
    if code == QUOTE_CURRENCY:
        return Decimal(1)
    return Decimal(quotes[code]["rate"])


def build_currencies() -> dict[str, Any]:
    return {
        "size": 0,
        "aggs": {
            "by_base": {
                "terms": {"field": "base", "size": 100},
                "aggs": {
                    "providers": {"terms": {"field": "provider", "size": 50}},
                    "latest": {"max": {"field": "as_of", "format": "yyyy-MM-dd"}},
                },
            }
        },
    }


def shape_currencies(response: dict[str, Any]) -> Currencies:
    seen = {
        b["key"]: b for b in response.get("aggregations", {}).get("by_base", {}).get("buckets", [])
    }
    currencies = []
    for code in (*CURRENCIES, QUOTE_CURRENCY):
        bucket = seen.get(code)
        currencies.append(
            Currency(
                code=code,
                name=CURRENCY_NAMES[code],
                providers=sorted(b["key"] for b in bucket["providers"]["buckets"])
                if bucket
                else [],
                latest_as_of=bucket["latest"].get("value_as_string") if bucket else None,
            )
        )
    return Currencies(quote=QUOTE_CURRENCY, currencies=currencies)
