"""Choosing a quote among providers, history and conversion bodies and shapes: pure functions."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from services.query.quotes import choose_quote, quote_of, shape_latest
from services.query.rates import (
    NoRate,
    UnknownCurrency,
    build_history,
    check_currency,
    convert,
    rates_on,
    shape_currencies,
    shape_history,
)


def _source(provider: str, as_of: str, rate: str, *, primary: bool | None = None,
            stale_after: str | None = None) -> dict[str, Any]:
    source: dict[str, Any] = {"base": "KZT", "quote": "USD", "rate": rate, "as_of": as_of,
                              "provider": provider, "change_pct": None}
    if primary is not None:
        source["primary"] = primary
    if stale_after is not None:
        source["stale_after"] = stale_after
    return source


NEWEST_FIRST = [
    _source("cbr", "2023-09-28", "0.0021", primary=False, stale_after="2023-10-02"),
    _source("nbk", "2023-09-27", "0.00211", primary=True, stale_after="2023-10-01"),
]


def test_the_current_primary_wins_over_a_newer_cross_rate() -> None:
    assert choose_quote(NEWEST_FIRST, date(2023, 9, 29))["provider"] == "nbk"


def test_a_stale_primary_gives_way_to_the_newest_quote() -> None:
    chosen = choose_quote(NEWEST_FIRST, date(2023, 10, 2))
    assert chosen["provider"] == "cbr"
    assert not quote_of(chosen, date(2023, 10, 2)).stale
    assert quote_of(chosen, date(2023, 10, 3)).stale


def test_without_a_day_the_primary_is_judged_on_the_newest_quotes_date() -> None:
    assert choose_quote(NEWEST_FIRST, None)["provider"] == "nbk"
    old_primary = [NEWEST_FIRST[0], _source("nbk", "2016-04-18", "0.003", primary=True,
                                            stale_after="2016-04-22")]
    assert choose_quote(old_primary, None)["provider"] == "cbr"


def test_quotes_from_before_cross_checks_count_as_primary_and_never_stale() -> None:
    legacy = [_source("cbr", "2023-09-27", "0.0021")]
    assert choose_quote(legacy, date(2030, 1, 1)) is legacy[0]
    assert quote_of(legacy[0], date(2030, 1, 1)).stale is False


def test_convert_goes_through_the_dollar_exactly() -> None:
    quotes = {"KZT": _source("cbu", "2022-04-11", str(Decimal("25.55") / Decimal("11344.69"))),
              "UZS": _source("cbu", "2022-04-10", str(1 / Decimal("11344.69")))}
    result = convert(Decimal(1000), "KZT", "UZS", quotes)
    assert Decimal(result.result) == (Decimal(1000) * Decimal(quotes["KZT"]["rate"])
                                      / Decimal(quotes["UZS"]["rate"]))
    assert result.as_of == "2022-04-10"  # the older of the two rates used
    assert result.model_dump(by_alias=True)["from"] == "KZT"


def test_convert_of_dollars_needs_no_quote_and_a_missing_one_is_said() -> None:
    assert convert(Decimal("2.5"), "USD", "USD", {}).result == "2.5"
    with pytest.raises(NoRate, match="no TJS/USD rate"):
        convert(Decimal(1), "TJS", "USD", {})


def test_currency_codes_are_checked_case_insensitively() -> None:
    assert check_currency("kzt") == "KZT"
    with pytest.raises(UnknownCurrency, match="EUR"):
        check_currency("EUR")


def test_history_body_filters_and_buckets() -> None:
    body = build_history("KZT", date(2023, 1, 1), None, "week", provider="nbk")
    assert body["query"]["bool"]["filter"] == [
        {"term": {"base": "KZT"}}, {"range": {"as_of": {"gte": "2023-01-01"}}},
        {"term": {"provider": "nbk"}}]
    histogram = body["aggs"]["periods"]["date_histogram"]
    assert (histogram["calendar_interval"], histogram["min_doc_count"]) == ("week", 1)


def test_currencies_are_listed_in_ticker_order_even_when_nothing_is_indexed() -> None:
    listed = shape_currencies({})
    assert [c.code for c in listed.currencies] == ["KGS", "KZT", "TJS", "UZS", "TMT", "USD"]
    assert all(c.providers == [] and c.latest_as_of is None for c in listed.currencies)


ABSURD_STORED = [
    {"rate": "1E+999999"}, {"rate": "1E-999999"}, {"rate": "NaN"}, {"rate": "Infinity"},
    {"rate": "-0.002"}, {"rate": "0"}, {"rate": "9" * 5000}, {"rate": "twelve"},
    {"rate": 1e308}, {"rate": None}, {"change_pct": "1E+999999"}, {"change_pct": "-1E+30"},
    {"change_pct": "NaN"}, {"change_pct": 12.5},
]


def _hits(*sources: dict[str, Any]) -> dict[str, Any]:
    return {"hits": {"hits": [{"_source": source} for source in sources]}}


@pytest.mark.parametrize("absurd", ABSURD_STORED)
def test_stored_quotes_out_of_bounds_are_left_out_of_every_answer(absurd: dict[str, Any]) -> None:
    newest = {**_source("nbk", "2023-09-28", "0.0021", primary=True), **absurd}
    older = _source("nbk", "2023-09-27", "0.00211", primary=True)
    both = _hits(newest, older)

    latest = shape_latest({"aggregations": {"by_base": {"buckets": [
        {"key": "KZT", "latest": both}]}}})
    history = shape_history({"aggregations": {"periods": {"buckets": [
        {"key_as_string": "2023-09-01", "last": both}]}}}, "KZT", "month")
    on = rates_on({"aggregations": {"by_base": {"buckets": [
        {"key": "KZT", "latest": both}]}}}, date(2023, 9, 29))

    assert [q.as_of for q in latest.quotes] == ["2023-09-27"]
    assert [p.as_of for p in history.points] == ["2023-09-27"]
    assert convert(Decimal("1E+15"), "KZT", "USD", on).result == "2.11E+12"


def test_a_currency_with_only_absurd_stored_quotes_has_no_rate() -> None:
    absurd = _hits(_source("nbk", "2023-09-28", "1E+999999"))
    on = rates_on({"aggregations": {"by_base": {"buckets": [{"key": "KZT", "latest": absurd}]}}},
                  date(2023, 9, 29))
    with pytest.raises(NoRate):
        convert(Decimal(1), "KZT", "USD", on)
