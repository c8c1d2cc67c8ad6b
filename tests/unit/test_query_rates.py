"""Choosing a quote among providers, history and conversion bodies and shapes: pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from services.query.quotes import choose_quote, quote_of, shape_latest, significant
from services.query.rates import (
    UnknownCurrency,
    build_history,
    build_rates_between,
    check_currency,
    common_rates,
    convert,
    shape_currencies,
    shape_history,
)
from shared.index import QUOTE_SOURCE, QuoteSource


def _source(
    provider: str,
    as_of: str,
    rate: str,
    *,
    primary: bool | None = None,
    stale_after: str | None = None,
    base: str = "KZT",
) -> QuoteSource:
    source: dict[str, Any] = {
        "base": base,
        "quote": "USD",
        "rate": rate,
        "as_of": as_of,
        "provider": provider,
        "change_pct": None,
    }
    if primary is not None:
        source["primary"] = primary
    if stale_after is not None:
        source["stale_after"] = stale_after
    return QUOTE_SOURCE.validate_python(source)


NEWEST_FIRST = [
    _source("cbr", "2023-09-28", "0.0021", primary=False, stale_after="2023-10-02"),
    _source("nbk", "2023-09-27", "0.00211", primary=True, stale_after="2023-10-01"),
]


def test_the_current_primary_wins_over_a_newer_cross_rate() -> None:
    assert choose_quote(NEWEST_FIRST, date(2023, 9, 29))["provider"] == "nbk"


def test_a_stale_primary_gives_way_to_a_current_quote_which_says_so() -> None:
    chosen = choose_quote(NEWEST_FIRST, date(2023, 10, 2))
    assert chosen["provider"] == "cbr"
    shown = quote_of(chosen, date(2023, 10, 2), 10)
    assert (shown.stale, shown.fallback, shown.age_days) == (False, True, 4)
    later = quote_of(chosen, date(2023, 10, 3), 10)
    assert (later.stale, later.age_days) == (True, 5)


def test_a_current_cross_rate_wins_over_a_newer_stale_one_when_the_primary_is_stale() -> None:
    sources = [
        _source("json-api", "2023-10-20", "0.0021", primary=False, stale_after="2023-10-21"),
        _source("cbr", "2023-10-19", "0.0021", primary=False, stale_after="2023-10-30"),
        _source("nbk", "2016-04-18", "0.003", primary=True, stale_after="2016-04-22"),
    ]
    assert choose_quote(sources, date(2023, 10, 25))["provider"] == "cbr"
    assert choose_quote(sources, date(2024, 1, 1))["provider"] == "json-api"  # none current


def test_without_a_day_the_primary_is_judged_on_the_newest_quotes_date() -> None:
    assert choose_quote(NEWEST_FIRST, None)["provider"] == "nbk"
    old_primary = [
        NEWEST_FIRST[0],
        _source("nbk", "2016-04-18", "0.003", primary=True, stale_after="2016-04-22"),
    ]
    assert choose_quote(old_primary, None)["provider"] == "cbr"


def test_quotes_from_before_cross_checks_count_as_primary_and_never_stale() -> None:
    legacy = [_source("cbr", "2023-09-27", "0.0021")]
    assert choose_quote(legacy, date(2030, 1, 1)) is legacy[0]
    assert quote_of(legacy[0], date(2030, 1, 1), 10).stale is False


def test_convert_goes_through_the_dollar_exactly_and_answers_rounded() -> None:
    kzt, uzs = Decimal("25.55") / Decimal("11344.69"), 1 / Decimal("11344.69")
    quotes = {
        "KZT": _source("cbu", "2022-04-11", str(kzt)),
        "UZS": _source("cbu", "2022-04-11", str(uzs), base="UZS"),
    }
    result = convert(Decimal(1000), "KZT", "UZS", date(2022, 4, 11), quotes, 10)
    assert result.result == significant(Decimal(1000) * kzt / uzs, 10) == "25550.00000"
    assert result.as_of == "2022-04-11"
    assert [(r.rate, r.provider) for r in result.rates] == [
        (significant(kzt, 10), "cbu"),
        (significant(uzs, 10), "cbu"),
    ]
    assert len(result.rates[1].rate.lstrip("0.")) == 10
    assert result.model_dump(by_alias=True)["from"] == "KZT"


def test_convert_of_dollars_needs_no_quote() -> None:
    assert convert(Decimal("2.5"), "USD", "USD", None, {}, 10).result == "2.500000000"


def _search_hits(*sources: Mapping[str, object]) -> dict[str, Any]:
    return {"hits": {"hits": [{"_source": source} for source in sources]}}


def test_conversion_rates_come_from_one_date_both_currencies_have() -> None:
    # The issue's case: the newest tenge of 2023-09-27, the newest sum of 2025-12-13.
    answer = _search_hits(
        _source("cbu", "2025-12-13", "0.0000830", base="UZS", primary=True),
        _source("nbk", "2023-09-28", "0.00210", primary=True),
        _source("cbr", "2023-09-27", "0.00211", primary=False),
        _source("cbr", "2023-09-27", "0.0000815", base="UZS", primary=False),
        _source("cbu", "2023-09-26", "0.0000816", base="UZS", primary=True),
        _source("nbk", "2023-09-26", "0.00212", primary=True),
    )
    found = common_rates(answer, ["KZT", "UZS"])
    assert found is not None
    day, quotes = found
    assert day == date(2023, 9, 27)
    assert {base: q["provider"] for base, q in quotes.items()} == {"KZT": "cbr", "UZS": "cbr"}
    assert common_rates(_search_hits(answer["hits"]["hits"][0]["_source"]), ["KZT", "UZS"]) is None


def test_the_window_body_asks_for_every_quote_of_the_dates() -> None:
    body = build_rates_between(["KZT", "UZS"], date(2023, 9, 20), date(2023, 9, 27), 10)
    assert body["size"] == 2 * 10 * 8
    assert body["query"]["bool"]["filter"][1] == {
        "range": {"as_of": {"gte": "2023-09-20", "lte": "2023-09-27"}}
    }


def test_currency_codes_are_checked_case_insensitively() -> None:
    assert check_currency("kzt") == "KZT"
    with pytest.raises(UnknownCurrency, match="EUR"):
        check_currency("EUR")


def test_history_body_filters_and_buckets() -> None:
    body = build_history("KZT", date(2023, 1, 1), None, "week", provider="nbk")
    assert body["query"]["bool"]["filter"] == [
        {"term": {"base": "KZT"}},
        {"range": {"as_of": {"gte": "2023-01-01"}}},
        {"term": {"provider": "nbk"}},
    ]
    histogram = body["aggs"]["periods"]["date_histogram"]
    assert (histogram["calendar_interval"], histogram["min_doc_count"]) == ("week", 1)


def test_currencies_are_listed_in_ticker_order_even_when_nothing_is_indexed() -> None:
    listed = shape_currencies({})
    assert [c.code for c in listed.currencies] == ["KGS", "KZT", "TJS", "UZS", "TMT", "USD"]
    assert all(c.providers == [] and c.latest_as_of is None for c in listed.currencies)


ABSURD_STORED = [
    {"rate": "1E+999999"},
    {"rate": "1E-999999"},
    {"rate": "NaN"},
    {"rate": "Infinity"},
    {"rate": "-0.002"},
    {"rate": "0"},
    {"rate": "9" * 5000},
    {"rate": "twelve"},
    {"rate": 1e308},
    {"rate": None},
    {"change_pct": "1E+999999"},
    {"change_pct": "-1E+30"},
    {"change_pct": "NaN"},
    {"change_pct": 12.5},
]


def _hits(*sources: Mapping[str, object]) -> dict[str, Any]:
    return {"hits": {"hits": [{"_source": source} for source in sources]}}


@pytest.mark.parametrize("absurd", ABSURD_STORED)
def test_stored_quotes_out_of_bounds_are_left_out_of_every_answer(absurd: dict[str, Any]) -> None:
    newest = {**_source("nbk", "2023-09-28", "0.0021", primary=True), **absurd}
    older = _source("nbk", "2023-09-27", "0.00211", primary=True)
    both = _hits(newest, older)

    latest = shape_latest(
        {"aggregations": {"by_base": {"buckets": [{"key": "KZT", "latest": both}]}}}, 10
    )
    history = shape_history(
        {"aggregations": {"periods": {"buckets": [{"key_as_string": "2023-09-01", "last": both}]}}},
        "KZT",
        "month",
        10,
    )
    found = common_rates(both, ["KZT"])

    assert [q.as_of for q in latest.quotes] == ["2023-09-27"]
    assert [p.as_of for p in history.points] == ["2023-09-27"]
    assert found is not None
    day, quotes = found
    assert convert(Decimal("1E+15"), "KZT", "USD", day, quotes, 10).result == "2110000000000"


def test_a_currency_with_only_absurd_stored_quotes_has_no_rate() -> None:
    assert common_rates(_hits(_source("nbk", "2023-09-28", "1E+999999")), ["KZT"]) is None
