"""Routes for rate history, conversion and the currency list; the work is in rates.py."""

# No `from __future__ import annotations`: FastAPI reads these signatures at run time.

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from elasticsearch import AsyncElasticsearch
from fastapi import APIRouter, HTTPException, Query

from services.query.rates import (
    Conversion,
    Currencies,
    History,
    Interval,
    NoRate,
    UnknownCurrency,
    build_currencies,
    build_history,
    build_rates_on,
    check_currency,
    convert,
    rates_on,
    shape_currencies,
    shape_history,
)
from shared.decimals import AMOUNT, BadDecimal, parse_within

MAX_AMOUNT_LENGTH = 40


def rates_router(es: Callable[[], AsyncElasticsearch], quotes_index: str) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["rates"])

    async def search(body: dict[str, Any]) -> dict[str, Any]:
        return dict(await es().search(index=quotes_index, body=body, ignore_unavailable=True))

    @router.get("/quotes/{base}/history", response_model=History)
    async def history(
        base: str,
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
        interval: Interval = "day",
        provider: Annotated[str | None, Query(max_length=50,
                                              description="only this provider's quotes")] = None,
    ) -> History:
        """X/USD over time: one point per day, week or month (its last as-of date)."""
        code = _currency(base)
        if start and end and start > end:
            raise HTTPException(status_code=400, detail="`from` is after `to`")
        response = await search(build_history(code, start, end, interval, provider))
        return shape_history(response, code, interval)

    @router.get("/convert", response_model=Conversion, response_model_by_alias=True)
    async def convert_amount(
        source: Annotated[str, Query(alias="from", min_length=3, max_length=3)],
        target: Annotated[str, Query(alias="to", min_length=3, max_length=3)],
        amount: Annotated[str, Query(max_length=MAX_AMOUNT_LENGTH,
                                     description=f"a decimal number {AMOUNT}, e.g. 1000")],
        on: Annotated[date | None, Query(alias="date", description="default: newest")] = None,
    ) -> Conversion:
        """`amount` of one currency in another, through the US dollar, in exact decimals."""
        codes = (_currency(source), _currency(target))
        value = _amount(amount)
        bases = [c for c in dict.fromkeys(codes) if c != "USD"]
        day = on or datetime.now(UTC).date()
        quotes = rates_on(await search(build_rates_on(bases, on)), day) if bases else {}
        try:
            return convert(value, codes[0], codes[1], quotes)
        except NoRate as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc

    @router.get("/currencies", response_model=Currencies)
    async def currencies() -> Currencies:
        """The currencies quoted, with their providers and newest as-of date."""
        return shape_currencies(await search(build_currencies()))

    return router


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
