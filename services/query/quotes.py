"""Latest quotes and the ticker line, as the seed page shows them: `KGS/USD = 0.01156 -0%`.

Ticker rule: the rate rounded half-even to five decimal places; the change
rounded half-even to two decimals with trailing zeros dropped; a change that
rounds to zero keeps its sign when it was negative (`-0%`), as the seed does.
A quote with no previous rate shows no change.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pydantic import BaseModel

TICKER_CURRENCIES = ("KGS", "KZT", "TJS", "UZS", "TMT")


class Quote(BaseModel):
    base: str
    quote: str
    rate: str
    change_pct: str | None
    as_of: str
    provider: str
    ticker: str


class LatestQuotes(BaseModel):
    quotes: list[Quote]
    ticker: list[str]


def format_change(change: Decimal) -> str:
    rounded = change.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    if rounded.is_zero():
        return "-0%" if change < 0 else "0%"
    text = format(rounded, "f").rstrip("0").rstrip(".")
    return f"{text}%"


def ticker_line(base: str, quote: str, rate: Decimal, change: Decimal | None) -> str:
    line = f"{base}/{quote} = {rate.quantize(Decimal('0.00001'), rounding=ROUND_HALF_EVEN)}"
    return f"{line} {format_change(change)}" if change is not None else line


def build_latest(currencies: tuple[str, ...] = TICKER_CURRENCIES) -> dict[str, Any]:
    """The newest quote of each currency: as-of date first, then the latest observation."""
    return {
        "size": 0,
        "query": {"terms": {"base": list(currencies)}},
        "aggs": {"by_base": {
            "terms": {"field": "base", "size": len(currencies)},
            "aggs": {"latest": {"top_hits": {
                "size": 1,
                "sort": [{"as_of": "desc"}, {"fetched_at": "desc"}],
            }}},
        }},
    }


def shape_latest(response: dict[str, Any],
                 currencies: tuple[str, ...] = TICKER_CURRENCIES) -> LatestQuotes:
    found: dict[str, Quote] = {}
    for bucket in response["aggregations"]["by_base"]["buckets"]:
        src = bucket["latest"]["hits"]["hits"][0]["_source"]
        change = Decimal(src["change_pct"]) if src.get("change_pct") is not None else None
        found[src["base"]] = Quote(
            base=src["base"], quote=src["quote"], rate=src["rate"],
            change_pct=str(change) if change is not None else None,
            as_of=src["as_of"], provider=src["provider"],
            ticker=ticker_line(src["base"], src["quote"], Decimal(src["rate"]), change),
        )
    ordered = [found[code] for code in currencies if code in found]
    return LatestQuotes(quotes=ordered, ticker=[q.ticker for q in ordered])
