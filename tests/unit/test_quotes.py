"""format_change / ticker_line: the seed page ticker at four significant digits;
latest-quotes aggregation."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.query.quotes import (
    LatestQuotes,
    build_latest,
    format_change,
    shape_latest,
    significant,
    ticker_line,
    usable_sources,
)
from services.ratefeed.parsers.cbr import parse_cbr
from services.ratefeed.rates import usd_rates
from shared.index import CURRENCIES

REALDATA = Path(__file__).resolve().parents[2] / "samples" / "realdata"


def _seed_ticker() -> list[str]:
    """The distinct ticker lines of the seed page, in page order."""
    text = (REALDATA / "seed-page.txt").read_text(encoding="utf-8")
    lines = re.findall(r"^\s*•\s*([A-Z]{3}/USD = .+?)\s*$", text, flags=re.M)
    return list(dict.fromkeys(lines))


SEED_TICKER = _seed_ticker()


def test_seed_page_ticker_is_what_we_expect_to_reproduce() -> None:
    assert SEED_TICKER == [
        "KGS/USD = 0.01156 -0%",
        "KZT/USD = 0.00199 -0%",
        "TJS/USD = 0.09174 0.33%",
        "UZS/USD = 0.00008 0%",
        "TMT/USD = 0.28615 0.14%",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (Decimal("-0.0004"), "-0%"),
        (Decimal("-0.004999"), "-0%"),
        (Decimal("0.3300"), "0.33%"),
        (Decimal("0.1"), "0.1%"),
        (Decimal("0"), "0%"),
        (Decimal("-0"), "0%"),
        (Decimal("0.0004"), "0%"),
        (Decimal("0.005"), "0%"),  # half-even: 0.005 -> 0.00
        (Decimal("0.015"), "0.02%"),  # half-even: 0.015 -> 0.02
        (Decimal("0.025"), "0.02%"),  # half-even: 0.025 -> 0.02
        (Decimal("-1.2345"), "-1.23%"),
        (Decimal("10"), "10%"),
        (Decimal("100.00"), "100%"),
        (Decimal("-2.50"), "-2.5%"),
    ],
)
def test_format_change(change: Decimal, expected: str) -> None:
    assert format_change(change) == expected


@pytest.mark.parametrize(
    ("base", "rate", "change", "expected"),
    [
        ("KGS", Decimal("0.0115600"), Decimal("-0.0004"), "KGS/USD = 0.01156 -0%"),
        ("TJS", Decimal("0.091738"), Decimal("0.3300"), "TJS/USD = 0.09174 0.33%"),
    ],
)
def test_ticker_line_reproduces_the_seed_page(
    base: str, rate: Decimal, change: Decimal, expected: str
) -> None:
    line = ticker_line(base, "USD", rate, change)
    assert line == expected
    assert line in SEED_TICKER


@pytest.mark.parametrize(
    ("base", "rate", "change", "expected"),
    [
        # The seed's fixed five decimals left these fewer than four digits, or one more.
        ("UZS", Decimal("0.0000819"), Decimal("0"), "UZS/USD = 0.00008190 0%"),
        ("KZT", Decimal("0.001994"), Decimal("-0.003"), "KZT/USD = 0.001994 -0%"),
        ("TMT", Decimal("0.286150"), Decimal("0.1400"), "TMT/USD = 0.2862 0.14%"),
    ],
)
def test_ticker_line_has_four_significant_digits_where_the_seed_had_other(
    base: str, rate: Decimal, change: Decimal, expected: str
) -> None:
    assert ticker_line(base, "USD", rate, change) == expected


def test_ticker_line_without_previous_rate_has_no_percentage() -> None:
    assert ticker_line("KGS", "USD", Decimal("0.01156"), None) == "KGS/USD = 0.01156"


@pytest.mark.parametrize(
    ("rate", "shown"),
    [
        (Decimal("0.011562"), "0.01156"),
        (Decimal("0.0000830123"), "0.00008301"),
        (Decimal("1234.567"), "1235"),
        (Decimal("12.3456"), "12.35"),
        (Decimal("3.5"), "3.500"),
        (Decimal("0.000015"), "0.00001500"),
        (Decimal("0.000012345"), "0.00001234"),  # half-even: ...45 rounds to even
        (Decimal("0.000012355"), "0.00001236"),
        (Decimal("1E-9"), "0.000000001000"),  # the smallest rate the bounds allow
        (Decimal("123456789"), "123500000"),
    ],
)
def test_ticker_rate_has_four_significant_digits_written_out(rate: Decimal, shown: str) -> None:
    assert ticker_line("X", "USD", rate, None) == f"X/USD = {shown}"
    assert "E" not in shown


def test_real_cbr_uzs_rate_keeps_four_digits() -> None:
    rates = usd_rates(parse_cbr((REALDATA / "cbr-xml-daily-2023-09-27.xml").read_bytes()), ("UZS",))
    assert ticker_line("UZS", "USD", rates["UZS"], Decimal("0")) == "UZS/USD = 0.00008193 0%"


def test_build_latest_asks_for_newest_quote_per_currency() -> None:
    body = build_latest()
    assert body["size"] == 0
    assert body["query"] == {"terms": {"base": list(CURRENCIES)}}
    by_base = body["aggs"]["by_base"]
    assert by_base["terms"] == {"field": "base", "size": 5}
    top = by_base["aggs"]["latest"]["top_hits"]
    assert top["size"] == 1
    assert top["sort"] == [{"as_of": "desc"}, {"fetched_at": "desc"}]


def test_build_latest_custom_currencies() -> None:
    body = build_latest(("KZT", "UZS"))
    assert body["query"]["terms"]["base"] == ["KZT", "UZS"]
    assert body["aggs"]["by_base"]["terms"]["size"] == 2


def _bucket(base: str, rate: str, change: str | None) -> dict[str, Any]:
    source = {
        "base": base,
        "quote": "USD",
        "rate": rate,
        "change_pct": change,
        "as_of": "2025-03-29",
        "provider": "cbr",
        "pair": f"{base}/USD",
    }
    return {
        "key": base,
        "doc_count": 3,
        "latest": {
            "hits": {
                "total": {"value": 3, "relation": "eq"},
                "hits": [{"_index": "quotes-v1", "_id": f"{base}-USD", "_source": source}],
            }
        },
    }


def _aggregation(*buckets: dict[str, Any]) -> dict[str, Any]:
    return {
        "hits": {"total": {"value": 15, "relation": "eq"}, "hits": []},
        "aggregations": {
            "by_base": {
                "doc_count_error_upper_bound": 0,
                "sum_other_doc_count": 0,
                "buckets": list(buckets),
            }
        },
    }


def test_shape_latest_orders_as_the_ticker_and_formats_lines() -> None:
    response = _aggregation(  # Elasticsearch's bucket order is not the ticker's
        _bucket("TMT", "0.286150", "0.1400"),
        _bucket("UZS", "0.0000819", "0"),
        _bucket("KZT", "0.001994", "-0.003"),
        _bucket("TJS", "0.091738", "0.3300"),
        _bucket("KGS", "0.0115600", "-0.0004"),
    )
    latest = shape_latest(response, 10)
    assert isinstance(latest, LatestQuotes)
    assert [q.base for q in latest.quotes] == ["KGS", "KZT", "TJS", "UZS", "TMT"]
    assert latest.ticker == [
        "KGS/USD = 0.01156 -0%",
        "KZT/USD = 0.001994 -0%",
        "TJS/USD = 0.09174 0.33%",
        "UZS/USD = 0.00008190 0%",
        "TMT/USD = 0.2862 0.14%",
    ]
    kgs = latest.quotes[0]
    assert kgs.rate == "0.01156000000"  # ten significant digits; the ticker rounds the exact
    assert kgs.change_pct == "-0.0004000000000"
    assert kgs.quote == "USD"
    assert kgs.provider == "cbr"
    assert kgs.as_of == "2025-03-29"


def test_shape_latest_without_change_and_with_missing_currencies() -> None:
    latest = shape_latest(
        _aggregation(_bucket("UZS", "0.0000819", None), _bucket("KGS", "0.01156", "0.1")), 10
    )
    assert [q.base for q in latest.quotes] == ["KGS", "UZS"]
    assert latest.ticker == ["KGS/USD = 0.01156 0.1%", "UZS/USD = 0.00008190"]
    assert latest.quotes[1].change_pct is None


def test_shape_latest_ignores_currencies_outside_the_ticker() -> None:
    latest = shape_latest(
        _aggregation(_bucket("EUR", "1.05", "0"), _bucket("KZT", "0.002", "0")), 10
    )
    assert [q.base for q in latest.quotes] == ["KZT"]


def test_shape_latest_of_no_buckets_is_empty() -> None:
    assert shape_latest(_aggregation(), 10) == LatestQuotes(quotes=[], ticker=[])


@pytest.mark.parametrize(
    ("exact", "digits", "shown"),
    [
        ("0.01143510064016375348678533443", 10, "0.01143510064"),
        ("0.002109794696054980475447277473", 4, "0.002110"),
        ("11344.69", 10, "11344.69000"),
        ("0.00012345678905", 10, "0.0001234567890"),  # half-even: ...05 rounds to even
        ("-48.02037037037037037037037038", 6, "-48.0204"),
        ("2.5E+15", 4, "2500000000000000"),
        ("0", 10, "0"),
    ],
)
def test_numbers_are_answered_with_fixed_significant_digits(
    exact: str, digits: int, shown: str
) -> None:
    assert significant(Decimal(exact), digits) == shown


@pytest.mark.parametrize(("field", "day"), [("as_of", "0000-01-01"), ("stale_after", "2025-13-01")])
def test_a_quote_of_a_date_python_cannot_read_is_left_out(field: str, day: str) -> None:
    # Elasticsearch takes year 0; every page with the ticker on it failed to read it.
    good = {"base": "KZT", "quote": "USD", "rate": "0.0021", "as_of": "2025-03-29"}
    good["provider"] = "cbr"
    assert usable_sources([{"_source": good}, {"_source": good | {field: day}}]) == [good]
