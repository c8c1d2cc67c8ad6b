"""Latest quotes and the ticker line, as the seed page shows them: `KGS/USD = 0.01156 -0%`.

Ticker rule: the rate rounded half-even to four significant digits (the seed's
`0.01156` for KGS, and `0.00008301` for UZS, whose rate five fixed decimals would
leave one digit of); the change rounded half-even to two decimals with trailing
zeros dropped; a change that rounds to zero keeps its sign when it was negative
(`-0%`), as the seed does. A quote with no previous rate shows no change.

Several providers quote each currency (its national bank, and cross rates
through other banks). The quote shown is the newest one of the currency's
primary provider while it is current, else the newest current quote of another
provider (`fallback`), else the newest of any; a quote is stale once the day
(UTC) is past its `stale_after` date, and says so with its age in days.

Numbers are answered rounded half-even to a fixed number of significant digits
(`significant`); the index keeps the exact quotients, and the ticker line is
worked out from those.

A stored quote whose rate or change lies outside the bounds of shared/decimals.py
(written before they were checked, or by another producer) is left out, as if
absent: rounding it for the ticker or converting with it cannot be done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from shared.decimals import CHANGE_PCT, RATE, BadDecimal, read_within
from shared.index import CURRENCIES, QUOTE_SOURCE, QuoteSource

# Quotes read per currency to find its primary provider's newest: providers x days
# a quote stays current, with room to spare.
CANDIDATES = 32
NEWEST_FIRST = [{"as_of": "desc"}, {"fetched_at": "desc"}]
TICKER_DIGITS = 4


class Quote(BaseModel):
    base: str
    quote: str
    rate: str
    change_pct: str | None
    as_of: str
    provider: str
    ticker: str
    stale: bool = False
    age_days: int | None = Field(default=None, description="days from `as_of` to today (UTC)")
    fallback: bool = Field(
        default=False, description="not the primary provider's quote: its own is stale or missing"
    )
    flags: list[str] = Field(default_factory=list)


class LatestQuotes(BaseModel):
    quotes: list[Quote]
    ticker: list[str]


def significant(value: Decimal, digits: int) -> str:
    """`value` rounded half-even to `digits` significant digits, written out in full."""
    if value.is_zero():
        return "0"
    unit = Decimal(1).scaleb(value.adjusted() - digits + 1)
    return format(value.quantize(unit, rounding=ROUND_HALF_EVEN), "f")


def format_change(change: Decimal) -> str:
    rounded = change.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    if rounded.is_zero():
        return "-0%" if change < 0 else "0%"
    text = format(rounded, "f").rstrip("0").rstrip(".")
    return f"{text}%"


def ticker_line(base: str, quote: str, rate: Decimal, change: Decimal | None) -> str:
    line = f"{base}/{quote} = {significant(rate, TICKER_DIGITS)}"
    return f"{line} {format_change(change)}" if change is not None else line


def build_latest(currencies: tuple[str, ...] = CURRENCIES, candidates: int = 1) -> dict[str, Any]:
    """The newest quotes of each currency: as-of date first, then the latest observation."""
    return {
        "size": 0,
        "query": {"terms": {"base": list(currencies)}},
        "aggs": {
            "by_base": {
                "terms": {"field": "base", "size": len(currencies)},
                "aggs": {"latest": {"top_hits": {"size": candidates, "sort": NEWEST_FIRST}}},
            }
        },
    }


def usable_sources(hits: Sequence[Mapping[str, Any]]) -> list[QuoteSource]:
    """The `_source` of each hit, read as the index contract has it, whose rate and
    change lie within the bounds; one of another shape is left out like those."""
    usable = []
    for hit in hits:
        try:
            source = QUOTE_SOURCE.validate_python(hit["_source"])
            read_within(source["rate"], RATE)
            if source.get("change_pct") is not None:
                read_within(source.get("change_pct"), CHANGE_PCT)
            # Dates Elasticsearch takes and Python does not (`0000-01-01`) failed every
            # page with the ticker on it.
            for day in (source["as_of"], source.get("stale_after")):
                if day is not None:
                    date.fromisoformat(day)
        except (ValidationError, BadDecimal, ValueError):
            continue
        usable.append(source)
    return usable


def is_stale(source: QuoteSource, today: date) -> bool:
    until = source.get("stale_after")
    return until is not None and today > date.fromisoformat(until)


def choose_quote(sources: Sequence[QuoteSource], today: date | None) -> QuoteSource:
    """Among one currency's quotes, newest first: the primary provider's newest, if current,
    else the newest current one, else the newest.

    Current on `today`, or when it is None, on the newest quote's as-of date.
    """
    day = today or date.fromisoformat(sources[0]["as_of"])
    # Quotes from before providers were cross-checked carry no `primary`: they were.
    primary = next((s for s in sources if s.get("primary", True)), None)
    if primary is not None and not is_stale(primary, day):
        return primary
    return next((s for s in sources if not is_stale(s, day)), sources[0])


def quote_of(source: QuoteSource, today: date | None, digits: int) -> Quote:
    stored_change = source.get("change_pct")
    change = Decimal(stored_change) if stored_change is not None else None
    as_of = date.fromisoformat(source["as_of"])
    return Quote(
        base=source["base"],
        quote=source["quote"],
        rate=significant(Decimal(source["rate"]), digits),
        change_pct=significant(change, digits) if change is not None else None,
        as_of=source["as_of"],
        provider=source["provider"],
        ticker=ticker_line(source["base"], source["quote"], Decimal(source["rate"]), change),
        stale=today is not None and is_stale(source, today),
        age_days=(today - as_of).days if today is not None else None,
        fallback=not source.get("primary", True),
        flags=source.get("flags", []),
    )


def shape_latest(
    response: Mapping[str, Any],
    digits: int,
    currencies: tuple[str, ...] = CURRENCIES,
    today: date | None = None,
) -> LatestQuotes:
    """`today` (UTC) enables the staleness rule; without it the newest primary quote wins."""
    found: dict[str, Quote] = {}
    for bucket in response["aggregations"]["by_base"]["buckets"]:
        sources = usable_sources(bucket["latest"]["hits"]["hits"])
        if sources:
            found[bucket["key"]] = quote_of(choose_quote(sources, today), today, digits)
    ordered = [found[code] for code in currencies if code in found]
    return LatestQuotes(quotes=ordered, ticker=[q.ticker for q in ordered])
