"""A quote's change is against the provider's previous as-of date that exists, whatever
the order its documents arrive in: late, backfilled after the live poll, or filling a
gap. The quote after a late one is published again, a new version of the same event,
and the index follows. A late day beyond the bound of both its neighbours is a spike:
held, not published, until an operator releases it; a corrected past day is followed by
the day after it and by the rate feed's memory of it.

Bank of Russia documents (its own format) through the rate feed one at a time, against
the real Redis and Elasticsearch.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from services.ratefeed.app import ratefeed_once, ratefeed_release
from services.ratefeed.providers import RatesError
from services.ratefeed.rates import LastRate
from services.ratefeed.store import LastRateStore
from shared.events import DeadLetter, QuoteEvent
from shared.index import IndexNames
from shared.settings import FetchSettings, Settings
from shared.streams import DATA_FIELD
from tests.conftest import Namespace
from tests.loopback import LoopbackServer, static
from tests.pipeline import index_streams
from tests.streams import entries

pytestmark = pytest.mark.integration

USD_IN_RUB = Decimal(78)


def _xml(day: date, tenge_per_100_rub: str) -> str:
    """A CBR daily document of `day`: the dollar at 78 roubles, 100 tenge at the given price."""
    return (
        f'<ValCurs Date="{day:%d.%m.%Y}" name="Foreign Currency Market">'
        '<Valute ID="R01235"><NumCode>840</NumCode><CharCode>USD</CharCode>'
        "<Nominal>1</Nominal><Name>Dollar</Name><Value>78,0000</Value></Valute>"
        '<Valute ID="R01335"><NumCode>398</NumCode><CharCode>KZT</CharCode>'
        f"<Nominal>100</Nominal><Name>Tenge</Name><Value>{tenge_per_100_rub}</Value></Valute>"
        "</ValCurs>"
    )


def _document(tmp_path: Path, day: date, tenge_per_100_rub: str) -> str:
    path = tmp_path / f"cbr-{day.isoformat()}.xml"
    path.write_text(_xml(day, tenge_per_100_rub), encoding="utf-8")
    return str(path)


def _kzt(price: str) -> Decimal:
    return Decimal(price.replace(",", ".")) / 100 / USD_IN_RUB


async def _publish(settings: Settings, tmp_path: Path, *days: tuple[date, str]) -> None:
    for day, price in days:
        await ratefeed_once(settings, _document(tmp_path, day, price), "cbr")


async def _latest(redis: Redis, namespace: Namespace) -> dict[date, QuoteEvent]:
    """Each KZT day's quote as a reader ends with it: the highest version on the stream."""
    latest: dict[date, QuoteEvent] = {}
    for _, fields in await entries(redis, namespace.streams.quotes):
        quote = QuoteEvent.model_validate_json(fields[DATA_FIELD])
        if quote.base == "KZT" and (
            quote.as_of not in latest or quote.version > latest[quote.as_of].version
        ):
            latest[quote.as_of] = quote
    return latest


def _compared(quote: QuoteEvent) -> tuple[date | None, Decimal | None, list[str]]:
    change = None if quote.change_pct is None else quote.change_pct.quantize(Decimal("0.0001"))
    return quote.previous_as_of, change, quote.flags


def _pct(now: str, before: str) -> Decimal:
    return ((_kzt(now) - _kzt(before)) / _kzt(before) * 100).quantize(Decimal("0.0001"))


async def test_a_late_previous_day_gives_the_next_day_its_change_and_the_index_follows(
    redis: Redis, es: AsyncElasticsearch, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    await _publish(settings, tmp_path, (date(2023, 9, 27), "15,0000"))
    await _publish(settings, tmp_path, (date(2025, 12, 13), "14,9000"))
    first = (await _latest(redis, namespace))[date(2025, 12, 13)]
    assert _compared(first) == (date(2023, 9, 27), None, ["gap"])

    await _publish(settings, tmp_path, (date(2025, 12, 12), "15,1000"))

    latest = await _latest(redis, namespace)
    assert _compared(latest[date(2025, 12, 12)]) == (date(2023, 9, 27), None, ["gap"])
    again = latest[date(2025, 12, 13)]
    assert _compared(again) == (date(2025, 12, 12), _pct("14,9000", "15,1000"), [])
    assert again.idempotency_key == first.idempotency_key
    assert again.version > first.version
    assert again.rate == first.rate

    await index_streams(redis, es, settings)
    quotes = IndexNames(namespace.index_prefix).quotes
    stored = (await es.get(index=quotes, id=again.idempotency_key))["_source"]
    assert Decimal(stored["change_pct"]).quantize(Decimal("0.0001")) == _pct("14,9000", "15,1000")
    assert "gap" not in stored.get("flags", [])


async def test_a_backfill_after_the_live_poll_compares_every_day_with_the_day_before(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    days = [(date(2025, 12, d), f"15,{d:02d}00") for d in (9, 10, 11, 12)]
    await _publish(settings, tmp_path, (date(2025, 12, 13), "15,1300"))  # live, first ever
    await _publish(settings, tmp_path, *days)  # then the backfill, oldest first
    await _publish(settings, tmp_path, *days)  # and once more: nothing new

    latest = await _latest(redis, namespace)
    assert _compared(latest[date(2025, 12, 9)]) == (None, None, [])
    for day in (10, 11, 12, 13):
        now, before = f"15,{day:02d}00", f"15,{day - 1:02d}00"
        assert _compared(latest[date(2025, 12, day)]) == (
            date(2025, 12, day - 1),
            _pct(now, before),
            [],
        )
    quotes = [
        QuoteEvent.model_validate_json(fields[DATA_FIELD])
        for _, fields in await entries(redis, namespace.streams.quotes)
    ]
    # Published: the live day, the four backfilled ones, and the live day once per
    # backfilled day before it that it came to follow; the repeat published nothing.
    assert len(quotes) == 1 + 4 + 4


async def test_a_day_filling_a_gap_joins_both_sides(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    await _publish(
        settings, tmp_path, (date(2025, 12, 8), "15,0000"), (date(2025, 12, 12), "15,2000")
    )
    assert _compared((await _latest(redis, namespace))[date(2025, 12, 12)])[2] == ["gap"]

    await _publish(settings, tmp_path, (date(2025, 12, 10), "15,1000"))

    latest = await _latest(redis, namespace)
    assert _compared(latest[date(2025, 12, 10)]) == (
        date(2025, 12, 8),
        _pct("15,1000", "15,0000"),
        [],
    )
    assert _compared(latest[date(2025, 12, 12)]) == (
        date(2025, 12, 10),
        _pct("15,2000", "15,1000"),
        [],
    )
    # The next live day is compared with the baseline, whose previous day is now the 10th.
    await _publish(settings, tmp_path, (date(2025, 12, 13), "15,3000"))
    assert _compared((await _latest(redis, namespace))[date(2025, 12, 13)]) == (
        date(2025, 12, 12),
        _pct("15,3000", "15,2000"),
        [],
    )


async def test_a_poll_after_missed_days_reads_them_from_the_banks_history(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    # The feed missed two days (an outage, or a failover that lost them and its memory
    # of them together): the bank's history has them, and the next poll reads them.
    days = {date(2025, 12, d): f"15,{d:02d}00" for d in (9, 10, 11, 12)}
    bank = LoopbackServer()
    for day, price in days.items():
        bank.routes[f"/history/{day:%d.%m.%Y}"] = static(
            _xml(day, price).encode(), "application/xml"
        )
    bank.start()
    rates = tmp_path / "rates.toml"
    rates.write_text(
        '[[providers]]\nname = "cbr"\nkind = "cbr"\n'
        f'url = "{bank.url("/today")}"\n'
        f'history_url = "{bank.url("/history/")}{{date:%d.%m.%Y}}"\n'
        'timezone = "Europe/Moscow"\n',
        encoding="utf-8",
    )
    polling = replace(
        settings,
        fetch=FetchSettings(allow="127.0.0.1"),
        ratefeed=settings.ratefeed.model_copy(
            update={"providers": rates, "host_delay": 0, "retries": 0}
        ),
    )
    try:
        for today in (date(2025, 12, 9), date(2025, 12, 12)):
            bank.routes["/today"] = static(_xml(today, days[today]).encode(), "application/xml")
            await ratefeed_once(polling, None, "cbr")
    finally:
        bank.stop()

    latest = await _latest(redis, namespace)
    assert sorted(latest) == sorted(days)
    for number in (10, 11, 12):
        assert _compared(latest[date(2025, 12, number)]) == (
            date(2025, 12, number - 1),
            _pct(f"15,{number:02d}00", f"15,{number - 1:02d}00"),
            [],
        )


async def test_a_poll_after_missed_days_reads_them_from_a_peg_too(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    # The pegged manat after nine days of the feed down: the peg is known for each of them.
    rates = tmp_path / "rates.toml"
    rates.write_text(
        '[[providers]]\nname = "cbt"\nkind = "peg"\ntimezone = "Asia/Ashgabat"\n'
        '[providers.peg]\ncurrency = "TMT"\nper_usd = "3.5"\nsince = 2015-01-01\n',
        encoding="utf-8",
    )
    polling = replace(settings, ratefeed=settings.ratefeed.model_copy(update={"providers": rates}))
    nine_days_ago = datetime.now(UTC).date() - timedelta(days=9)
    # The peg's last quote before it: a business day, as the peg dates its quotes.
    down_since = nine_days_ago - timedelta(days=max(0, nine_days_ago.weekday() - 4))
    await LastRateStore(redis, namespace.stream_prefix).put(
        "cbt", "TMT", LastRate(down_since, 1 / Decimal("3.5"))
    )

    published = sorted(
        (q for q in await ratefeed_once(polling, None, "cbt") if q.base == "TMT"),
        key=lambda q: q.as_of,
    )

    assert len(published) >= 5  # at least a business week of missed days
    assert [q.previous_as_of for q in published] == [
        down_since,
        *(q.as_of for q in published[:-1]),
    ]
    assert all(q.flags == [] and q.change_pct == 0 for q in published)


async def _kzt_versions(redis: Redis, namespace: Namespace, day: date) -> int:
    return sum(
        1
        for _, fields in await entries(redis, namespace.streams.quotes)
        if (quote := QuoteEvent.model_validate_json(fields[DATA_FIELD])).base == "KZT"
        and quote.as_of == day
    )


async def _letters(redis: Redis, namespace: Namespace) -> list[DeadLetter]:
    return [
        DeadLetter.model_validate_json(fields[DATA_FIELD])
        for _, fields in await entries(redis, namespace.streams.deadletters)
    ]


async def test_a_late_spike_is_held_once_and_published_only_when_released(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    yesterday, today = date(2025, 12, 11), date(2025, 12, 12)
    await _publish(settings, tmp_path, (date(2025, 12, 10), "15,0000"), (today, "15,1000"))

    spike = (yesterday, "1510,0000")  # the tenge 100 times dearer, for one day
    await _publish(settings, tmp_path, spike)
    await _publish(settings, tmp_path, spike)  # polled again

    [letter] = await _letters(redis, namespace)
    assert letter.entry_id == "KZT-USD-2025-12-11-cbr"
    assert "late quote" in letter.error_message
    assert "(2025-12-10, the quote before it" in letter.error_message
    assert "(2025-12-12, the quote after it" in letter.error_message
    latest = await _latest(redis, namespace)
    assert yesterday not in latest
    assert _compared(latest[today]) == (date(2025, 12, 10), _pct("15,1000", "15,0000"), [])
    assert await _kzt_versions(redis, namespace, today) == 1

    released = await ratefeed_release(settings, [letter.entry_id])

    assert [(q.as_of, q.flags) for q in released] == [(yesterday, ["jump:released"]), (today, [])]
    latest = await _latest(redis, namespace)
    assert _compared(latest[yesterday]) == (
        date(2025, 12, 10),
        _pct("1510,0000", "15,0000"),
        ["jump:released"],
    )
    assert _compared(latest[today]) == (yesterday, _pct("15,1000", "1510,0000"), [])


async def test_a_corrected_past_day_is_what_the_next_day_and_its_correction_follow(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    yesterday, today = date(2025, 12, 11), date(2025, 12, 12)
    await _publish(settings, tmp_path, (yesterday, "15,0000"), (today, "15,0000"))

    await _publish(settings, tmp_path, (yesterday, "15,6000"))  # the bank corrects it

    latest = await _latest(redis, namespace)
    assert latest[yesterday].rate == _kzt("15,6000")
    assert _compared(latest[today]) == (yesterday, _pct("15,0000", "15,6000"), [])

    # Then today: +2.56 % on the corrected day before, +6.67 % on its old rate.
    await _publish(settings, tmp_path, (today, "16,0000"))

    assert await _letters(redis, namespace) == []
    latest = await _latest(redis, namespace)
    assert latest[today].rate == _kzt("16,0000")
    assert _compared(latest[today]) == (yesterday, _pct("16,0000", "15,6000"), [])


async def test_a_held_correction_the_bank_takes_back_is_held_no_more(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    before, yesterday, today = date(2025, 12, 10), date(2025, 12, 11), date(2025, 12, 12)
    await _publish(
        settings, tmp_path, (before, "15,0000"), (yesterday, "15,0500"), (today, "15,1000")
    )
    await _publish(settings, tmp_path, (yesterday, "1505,0000"))  # a slip: held
    [letter] = await _letters(redis, namespace)

    await _publish(settings, tmp_path, (yesterday, "15,0500"))  # the day as published again

    # Were it still held, a release would publish the slip the bank took back.
    with pytest.raises(RatesError, match="is not held"):
        await ratefeed_release(settings, [letter.entry_id])
    assert (await _latest(redis, namespace))[yesterday].rate == _kzt("15,0500")


async def test_a_correction_of_the_accepted_day_keeps_the_jump_held_after_it(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    monday, tuesday = date(2025, 12, 8), date(2025, 12, 9)
    await _publish(settings, tmp_path, (monday, "15,0000"), (tuesday, "18,0000"))  # held
    [letter] = await _letters(redis, namespace)

    await _publish(settings, tmp_path, (monday, "15,0100"))  # the bank corrects Monday

    [released] = await ratefeed_release(settings, [letter.entry_id])
    assert (released.as_of, released.flags) == (tuesday, ["jump:released"])
    assert _compared(released) == (monday, _pct("18,0000", "15,0100"), ["jump:released"])
