"""History, conversion, currencies and the primary/stale choice of latest, over the real index.

The quotes come from one poll of the bundled providers (real documents of four
different years, and the manat peg) through the real indexer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from services.query.quotes import significant
from services.ratefeed.app import ratefeed_once
from services.ratefeed.asof import local_today
from services.ratefeed.config import load_rates_config
from shared.settings import Settings
from tests.conftest import REALDATA, REPO, Namespace
from tests.pipeline import index_streams, query_client

pytestmark = pytest.mark.integration

CBR_FILE = REALDATA / "cbr-xml-daily-2023-09-27.xml"
SAMPLE_RATES = REPO / "samples" / "rates.toml"


@pytest.fixture
async def api(
    redis: Redis, es: AsyncElasticsearch, namespace: Namespace, tmp_path: Path, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    settings = replace(
        settings,
        ratefeed=settings.ratefeed.model_copy(update={"providers": SAMPLE_RATES}),
    )
    await ratefeed_once(settings)
    next_day = tmp_path / "cbr-28.xml"
    next_day.write_text(
        CBR_FILE.read_text(encoding="utf-8")
        .replace('Date="27.09.2023"', 'Date="28.09.2023"')
        .replace("<Value>96,2378</Value>", "<Value>96,5000</Value>"),
        encoding="utf-8",
    )
    await ratefeed_once(settings, str(next_day), "cbr")
    await index_streams(redis, es, settings)
    async with query_client(settings) as client:
        yield client


async def test_latest_shows_the_current_primary_else_the_newest_and_says_stale(
    api: httpx.AsyncClient,
) -> None:
    quotes = {q["base"]: q for q in (await api.get("/api/quotes/latest")).json()["quotes"]}

    # The manat peg is current today: its primary provider's quote, not stale.
    assert (quotes["TMT"]["provider"], quotes["TMT"]["stale"]) == ("cbt", False)
    assert quotes["TMT"]["rate"] == "0.2857142857"  # 1 / 3.5 to ten significant digits
    # The NBK's 2016 tenge is long out of date: the newest quote (Bank of Russia) is shown,
    # itself stale.
    assert (quotes["KZT"]["provider"], quotes["KZT"]["as_of"]) == ("cbr", "2023-09-28")
    assert quotes["KZT"]["stale"] is True
    assert quotes["KZT"]["fallback"] is True  # not the primary provider's (the NBK's)
    assert (
        quotes["KZT"]["age_days"]
        == (datetime.now(UTC).date() - date.fromisoformat("2023-09-28")).days
    )
    assert quotes["KZT"]["ticker"].startswith("KZT/USD = 0.002104 ")
    assert quotes["KZT"]["rate"] == significant(Decimal("0.203042") / Decimal("96.5000"), 10)
    # The page's ticker keeps the seed's line and says which ones are stale.
    page = (await api.get("/")).text
    assert (
        '<li data-base="KZT" data-day="2023-09-28" class="stale" '
        'title="as of 28 September 2023, '
        f'{quotes["KZT"]["age_days"]:,} days ago: no newer rate since">'
        f'{quotes["KZT"]["ticker"]} <small class="stale-note">stale, as of 28 September '
        "2023</small></li>"
    ) in page
    assert '<li data-base="TMT" data-day="' in page


async def test_history_by_day_and_month(api: httpx.AsyncClient) -> None:
    daily = (await api.get("/api/quotes/KZT/history")).json()
    monthly = (
        await api.get("/api/quotes/kzt/history", params={"from": "2020-01-01", "interval": "month"})
    ).json()
    only_cbr = (await api.get("/api/quotes/KZT/history", params={"provider": "cbr"})).json()

    assert [(p["as_of"], p["provider"]) for p in daily["points"]] == [
        ("2016-04-18", "nbk"),
        ("2020-12-14", "nbkr"),
        ("2022-04-11", "cbu"),
        ("2023-09-27", "cbr"),
        ("2023-09-28", "cbr"),
    ]
    assert daily["points"][0]["rate"] == significant(1 / Decimal("334.41"), 10)
    assert [(p["period"], p["as_of"]) for p in monthly["points"]] == [
        ("2020-12-01", "2020-12-14"),
        ("2022-04-01", "2022-04-11"),
        ("2023-09-01", "2023-09-28"),
    ]
    assert monthly["interval"] == "month"
    last = daily["points"][-1]
    rate, previous = (
        Decimal("0.203042") / Decimal("96.5000"),
        Decimal("0.203042") / Decimal("96.2378"),
    )
    assert last["change_pct"] == significant((rate - previous) / previous * 100, 10)
    assert [p["as_of"] for p in only_cbr["points"]] == ["2023-09-27", "2023-09-28"]


async def test_convert_goes_through_the_dollar_on_the_date_asked(api: httpx.AsyncClient) -> None:
    body = (
        await api.get(
            "/api/convert",
            params={"from": "KZT", "to": "UZS", "amount": "1000", "date": "2022-04-11"},
        )
    ).json()

    # Both rates from the Central Bank of Uzbekistan of that day (NBK's 2016 tenge is stale).
    kzt, uzs = Decimal("25.55") / Decimal("11344.69"), 1 / Decimal("11344.69")
    assert (body["from"], body["to"], body["amount"], body["as_of"]) == (
        "KZT",
        "UZS",
        "1000",
        "2022-04-11",
    )
    assert body["result"] == significant(Decimal(1000) * kzt / uzs, 10)
    assert [(r["base"], r["provider"]) for r in body["rates"]] == [("KZT", "cbu"), ("UZS", "cbu")]


async def test_convert_states_the_older_date_and_handles_the_dollar(api: httpx.AsyncClient) -> None:
    mixed = (
        await api.get(
            "/api/convert",
            params={"from": "TMT", "to": "KGS", "amount": "2.5", "date": "2023-09-27"},
        )
    ).json()
    dollars = (
        await api.get(
            "/api/convert", params={"from": "USD", "to": "UZS", "amount": "1", "date": "2022-04-11"}
        )
    ).json()

    assert mixed["as_of"] == "2023-09-27"
    assert Decimal(dollars["result"]) == Decimal("11344.69")
    assert dollars["as_of"] == "2022-04-11"


async def test_convert_refuses_rates_of_different_dates(api: httpx.AsyncClient) -> None:
    # The manat's newest rate is today's peg, the tenge's is of 2023: no common date
    # within the window before today, so no conversion that mixes them.
    answer = await api.get("/api/convert", params={"from": "KZT", "to": "TMT", "amount": "1"})
    same_day = (
        await api.get("/api/convert", params={"from": "KZT", "to": "UZS", "amount": "1"})
    ).json()

    assert answer.status_code == 404
    assert "with both KZT/USD and TMT/USD rates (the window is 7 days" in answer.json()["detail"]
    assert same_day["as_of"] == "2023-09-28"
    assert {(r["as_of"], r["provider"]) for r in same_day["rates"]} == {("2023-09-28", "cbr")}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"from": "EUR", "to": "KZT", "amount": "1"}, 404),
        ({"from": "KZT", "to": "UZS", "amount": "lots"}, 400),
        ({"from": "KZT", "to": "UZS", "amount": "-5"}, 400),
        ({"from": "KZT", "to": "UZS", "amount": "NaN"}, 400),
        ({"from": "KZT", "to": "UZS", "amount": "1E-999999"}, 400),
        ({"from": "KZT", "to": "UZS", "amount": "9" * 41}, 422),
        ({"from": "KZT", "to": "UZS", "amount": "1", "date": "2001-01-01"}, 404),
        # The window before the calendar's first day: an OverflowError (500) before.
        ({"from": "KZT", "to": "UZS", "amount": "1", "date": "0001-01-01"}, 404),
    ],
)
async def test_convert_refuses_what_it_cannot_answer(
    api: httpx.AsyncClient, params: dict[str, str], status: int
) -> None:
    assert (await api.get("/api/convert", params=params)).status_code == status


@pytest.mark.faults
async def test_an_absurd_amount_is_refused_with_the_bound(api: httpx.AsyncClient) -> None:
    # 9E+999999 is a decimal the context can hold; amount x rate overflows it.
    answer = await api.get("/api/convert?from=KZT&to=UZS&amount=9E%2B999999")

    assert answer.status_code == 400
    assert answer.json() == {
        "detail": "amount must be 0 or between 1E-12 and 1E+15, not '9E+999999'"
    }


@pytest.mark.faults
async def test_absurd_stored_quotes_are_passed_over_not_a_500(
    api: httpx.AsyncClient, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    # As another producer, or a rate feed without bounds, might have left them.
    for provider, rate in (("rogue-huge", "1E+999999"), ("rogue-tiny", "1E-999999")):
        await es.index(
            index=namespace.quotes,
            id=f"UZS-USD-2099-01-01-{provider}",
            document={
                "base": "UZS",
                "quote": "USD",
                "rate": rate,
                "change_pct": "1E+999999",
                "as_of": "2099-01-01",
                "provider": provider,
                "primary": True,
                "fetched_at": "2099-01-01T00:00:00Z",
            },
            refresh=True,
        )

    latest = await api.get("/api/quotes/latest")
    history = await api.get("/api/quotes/UZS/history")
    converted = await api.get(
        "/api/convert", params={"from": "UZS", "to": "USD", "amount": "1E+15"}
    )

    assert (latest.status_code, history.status_code, converted.status_code) == (200, 200, 200)
    uzs = next(q for q in latest.json()["quotes"] if q["base"] == "UZS")
    assert uzs["as_of"] != "2099-01-01"
    assert "2099-01-01" not in [p["as_of"] for p in history.json()["points"]]
    assert converted.json()["rates"][0]["as_of"] == uzs["as_of"]


async def test_currencies_lists_providers_and_newest_dates(api: httpx.AsyncClient) -> None:
    body = (await api.get("/api/currencies")).json()
    by_code = {c["code"]: c for c in body["currencies"]}

    assert body["quote"] == "USD"
    assert list(by_code) == ["KGS", "KZT", "TJS", "UZS", "TMT", "USD"]
    assert by_code["KZT"]["providers"] == ["cbr", "cbu", "nbk", "nbkr"]
    assert by_code["KZT"]["latest_as_of"] == "2023-09-28"
    # The peg is dated in its bank's calendar: Ashgabat's day begins at 19:00 UTC.
    (cbt,) = [p for p in load_rates_config(SAMPLE_RATES).providers if p.name == "cbt"]
    today = local_today(cbt.timezone, datetime.now(UTC)).isoformat()
    assert by_code["TMT"]["latest_as_of"] <= today
    assert by_code["USD"]["providers"] == []
