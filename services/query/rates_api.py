"""Routes for rate history, conversion and the currency list; the work is in rates.py."""

# No `from __future__ import annotations`: FastAPI reads these signatures at run time.

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from elasticsearch import AsyncElasticsearch
from fastapi import APIRouter, HTTPException, Query

from services.query.backend import answer_read
from services.query.limits import charged
from services.query.rates import (
    Conversion,
    Currencies,
    History,
    Interval,
    UnknownCurrency,
    build_currencies,
    build_history,
    build_newest,
    build_rates_between,
    check_currency,
    common_rates,
    convert,
    newest_date,
    shape_currencies,
    shape_history,
    window,
)
from shared.decimals import AMOUNT, BadDecimal, parse_within

MAX_AMOUNT_LENGTH = 40
# Quotes a currency has per as-of date at most: its providers, with room to spare.
PROVIDERS_PER_DAY = 10


def rates_router(
    es: Callable[[], AsyncElasticsearch], quotes_index: str, digits: int, convert_window_days: int
) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["rates"])

    async def search(body: dict[str, Any]) -> dict[str, Any]:
        answer = await charged(es().search(index=quotes_index, body=body, ignore_unavailable=True))
        with answer_read():
            return dict(answer)

    @router.get("/quotes/{base}/history", response_model=History)
    async def history(
        base: str,
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
        interval: Interval = "day",
        provider: Annotated[
            str | None, Query(max_length=50, description="only this provider's quotes")
        ] = None,
    ) -> History:
        """X/USD over time: one point per day, week or month (its last as-of date)."""
        code = _currency(base)
        if start and end and start > end:
            raise HTTPException(status_code=400, detail="`from` is after `to`")
        response = await search(build_history(code, start, end, interval, provider))
        with answer_read():
            return shape_history(response, code, interval, digits)

    @router.get("/convert", response_model=Conversion, response_model_by_alias=True)
    async def convert_amount(
        source: Annotated[str, Query(alias="from", min_length=3, max_length=3)],
        target: Annotated[str, Query(alias="to", min_length=3, max_length=3)],
        amount: Annotated[
            str,
            Query(
                max_length=MAX_AMOUNT_LENGTH, description=f"a decimal number {AMOUNT}, e.g. 1000"
            ),
        ],
        on: Annotated[
            date | None,
            Query(alias="date", description="default: the newest date both currencies have"),
        ] = None,
    ) -> Conversion:
        """`amount` of one currency in another, through the US dollar, with rates of one
        as-of date, named in the answer with each rate's provider."""
        codes = (_currency(source), _currency(target))
        value = _amount(amount)
        bases = [c for c in dict.fromkeys(codes) if c != "USD"]
        if not bases:
            return convert(value, codes[0], codes[1], None, {}, digits)
        anchor = on or newest_date(await search(build_newest(bases, None)))
        found = None
        if anchor is not None:
            start, end = window(anchor, convert_window_days)
            found = common_rates(
                await search(build_rates_between(bases, start, end, PROVIDERS_PER_DAY)), bases
            )
        if found is None:
            raise HTTPException(
                status_code=404, detail=_no_common_date(bases, anchor, convert_window_days)
            )
        day, quotes = found
        return convert(value, codes[0], codes[1], day, quotes, digits)

    @router.get("/currencies", response_model=Currencies)
    async def currencies() -> Currencies:
        """The currencies quoted, with their providers and newest as-of date."""
        response = await search(build_currencies())
        with answer_read():
            return shape_currencies(response)

    return router


def _no_common_date(bases: list[str], anchor: date | None, days: int) -> str:
    wanted = " and ".join(f"{code}/USD" for code in bases)
    if anchor is None:
        return f"no {wanted} rate at all"
    return (
        f"no as-of date from {window(anchor, days)[0]} to {anchor} with "
        f"{'both ' if len(bases) > 1 else ''}{wanted} rates (the window is "
        f"{days} days: CARAVAN_QUERY_CONVERT_WINDOW_DAYS)"
    )


def _currency(code: str) -> str:
    try:
        return check_currency(code)
    except UnknownCurrency as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


def _amount(text: str) -> Decimal:
    try:
        return parse_within(text, AMOUNT)
    except BadDecimal as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
