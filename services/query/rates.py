"""Rate history, currency conversion and the currency list: query bodies and their shaping.

Every rate is X/USD, an exact decimal string. A conversion goes through the
dollar: amount x (from/USD) / (to/USD), with the newest quote of each currency
on or before the date asked (its primary provider's where there is one that
day), and states the as-of dates it used. History buckets hold the rate of the
last as-of date in each day, week (Monday first) or month.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.query.quotes import (
    CANDIDATES,
    NEWEST_FIRST,
    TICKER_CURRENCIES,
    choose_quote,
    usable_sources,
)

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


class NoRate(LookupError):
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
    """The older as-of date of the two rates used (None when both sides are US dollars)."""
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


def build_history(base: str, start: date | None, end: date | None, interval: Interval,
                  provider: str | None = None) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [{"term": {"base": base}}, *_as_of_range(start, end)]
    if provider is not None:
        filters.append({"term": {"provider": provider}})
    return {
        "size": 0,
        "query": {"bool": {"filter": filters}},
        "aggs": {"periods": {
            "date_histogram": {"field": "as_of", "calendar_interval": interval,
                               "min_doc_count": 1, "format": "yyyy-MM-dd"},
            "aggs": {"last": {"top_hits": {"size": CANDIDATES, "sort": NEWEST_FIRST}}},
        }},
    }


def shape_history(response: dict[str, Any], base: str, interval: Interval) -> History:
    points = []
    for bucket in response.get("aggregations", {}).get("periods", {}).get("buckets", []):
        sources = usable_sources(bucket["last"]["hits"]["hits"])
        if not sources:
            continue
        chosen = choose_quote(sources, None)
        points.append(HistoryPoint(
            period=bucket["key_as_string"], as_of=chosen["as_of"], rate=chosen["rate"],
            change_pct=chosen.get("change_pct"), provider=chosen["provider"],
            flags=chosen.get("flags", [])))
    return History(base=base, quote=QUOTE_CURRENCY, interval=interval, points=points)


def build_rates_on(bases: list[str], on: date | None) -> dict[str, Any]:
    """The newest quotes of each currency on or before `on` (or ever)."""
    return {
        "size": 0,
        "query": {"bool": {"filter": [{"terms": {"base": bases}}, *_as_of_range(None, on)]}},
        "aggs": {"by_base": {
            "terms": {"field": "base", "size": max(1, len(bases))},
            "aggs": {"latest": {"top_hits": {"size": CANDIDATES, "sort": NEWEST_FIRST}}},
        }},
    }


def rates_on(response: dict[str, Any], on: date) -> dict[str, dict[str, Any]]:
    """The quote chosen for each currency in a build_rates_on answer, by code."""
    found = {}
    for bucket in response.get("aggregations", {}).get("by_base", {}).get("buckets", []):
        sources = usable_sources(bucket["latest"]["hits"]["hits"])
        if sources:
            found[bucket["key"]] = choose_quote(sources, on)
    return found


def convert(amount: Decimal, source: str, target: str,
            quotes: dict[str, dict[str, Any]]) -> Conversion:
    used = [_used(code, quotes) for code in dict.fromkeys((source, target))]
    rate = {u.base: Decimal(u.rate) for u in used}
    dates = [u.as_of for u in used if u.as_of is not None]
    return Conversion(from_=source, to=target, amount=str(amount),
                      result=str(amount * rate[source] / rate[target]),
                      as_of=min(dates) if dates else None, rates=used)


def _used(code: str, quotes: dict[str, dict[str, Any]]) -> UsedRate:
    if code == QUOTE_CURRENCY:
        return UsedRate(base=code, rate="1", as_of=None, provider=None)
    quote = quotes.get(code)
    if quote is None:
        msg = f"no {code}/{QUOTE_CURRENCY} rate on or before the date asked"
        raise NoRate(msg)
    return UsedRate(base=code, rate=quote["rate"], as_of=quote["as_of"],
                    provider=quote["provider"])


def build_currencies() -> dict[str, Any]:
    return {
        "size": 0,
        "aggs": {"by_base": {
            "terms": {"field": "base", "size": 100},
            "aggs": {"providers": {"terms": {"field": "provider", "size": 50}},
                     "latest": {"max": {"field": "as_of", "format": "yyyy-MM-dd"}}},
        }},
    }


def shape_currencies(response: dict[str, Any]) -> Currencies:
    seen = {b["key"]: b for b in
            response.get("aggregations", {}).get("by_base", {}).get("buckets", [])}
    currencies = []
    for code in (*TICKER_CURRENCIES, QUOTE_CURRENCY):
        bucket = seen.get(code)
        currencies.append(Currency(
            code=code, name=CURRENCY_NAMES[code],
            providers=sorted(b["key"] for b in bucket["providers"]["buckets"]) if bucket else [],
            latest_as_of=bucket["latest"].get("value_as_string") if bucket else None))
    return Currencies(quote=QUOTE_CURRENCY, currencies=currencies)
