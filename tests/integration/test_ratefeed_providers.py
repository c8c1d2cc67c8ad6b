"""The rate feed over several providers, against the real Redis and a real local HTTP server.

Documents are the real samples (and the hand-written NBT fixture), served from
files or by an http.server on 127.0.0.1; what is asserted is what lands on the
quotes and dead-letter streams.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.ratefeed import worker
from services.ratefeed.app import (
    ratefeed_backfill,
    ratefeed_once,
    ratefeed_release,
    readiness_probe,
)
from services.ratefeed.config import load_rates_config
from services.ratefeed.providers import RatesError, WrongFormat
from services.ratefeed.rates import LastRate
from services.ratefeed.status import ProviderStatus
from services.ratefeed.store import LastRateStore
from shared.events import DeadLetter, QuoteEvent
from shared.fetch import FetchError
from shared.service import ServiceContext
from shared.settings import FetchSettings, Settings
from shared.streams import DATA_FIELD
from tests.conftest import REALDATA, REPO, Namespace
from tests.loopback import Hit, LoopbackServer, Reply, Route, static
from tests.streams import entries

pytestmark = pytest.mark.integration

CBR_FILE = REALDATA / "cbr-xml-daily-2023-09-27.xml"
NBT_FIXTURE = REPO / "samples" / "fixtures" / "nbt-daily-2023-09-27.xml"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A real HTTP server on loopback, which the guarded fetcher may reach (`server_settings`)."""
    running = LoopbackServer()
    running.start()
    yield running
    running.stop()


@pytest.fixture
def server_settings(settings: Settings) -> Settings:
    """`settings` that let the rate feed fetch from `server` (allow-listed), without delays."""
    return replace(
        settings,
        fetch=FetchSettings(allow="127.0.0.1"),
        ratefeed=settings.ratefeed.model_copy(update={"host_delay": 0, "retries": 0}),
    )


def _slow(body: bytes, seconds: float) -> Route:
    def route(_: Hit) -> Reply:
        time.sleep(seconds)  # the handler's own thread: the client's timeout fires first
        return Reply(200, body)

    return route


def _providers_file(settings: Settings, tmp_path: Path, body: str, **ratefeed: Any) -> Settings:
    """`settings` with a providers file of `body`, and the rate feed's `ratefeed` settings."""
    path = tmp_path / "rates.toml"
    path.write_text(body, encoding="utf-8")
    update = {"providers": path, **ratefeed}
    return replace(settings, ratefeed=settings.ratefeed.model_copy(update=update))


def _one_cbr(settings: Settings, tmp_path: Path, name: str, url: object, *more: str) -> Settings:
    """`settings` with one provider of the Bank of Russia's kind, and `more` lines."""
    lines = "".join(f"{line}\n" for line in more)
    return _providers_file(
        settings, tmp_path, f'[[providers]]\nname = "{name}"\nkind = "cbr"\nurl = "{url}"\n{lines}'
    )


async def _quotes(redis: Redis, namespace: Namespace) -> list[QuoteEvent]:
    return [
        QuoteEvent.model_validate_json(fields[DATA_FIELD])
        for _, fields in await entries(redis, namespace.streams.quotes)
    ]


async def _dead_letters(redis: Redis, namespace: Namespace) -> list[DeadLetter]:
    return [
        DeadLetter.model_validate_json(fields[DATA_FIELD])
        for _, fields in await entries(redis, namespace.streams.deadletters)
    ]


async def test_one_poll_of_the_bundled_providers_publishes_every_providers_quotes(
    redis: Redis, namespace: Namespace, settings: Settings
) -> None:
    settings = replace(
        settings,
        ratefeed=settings.ratefeed.model_copy(
            update={"providers": REPO / "samples" / "rates.toml"}
        ),
    )
    first = await ratefeed_once(settings)
    again = await ratefeed_once(settings)

    quotes = await _quotes(redis, namespace)
    assert len(first) == len(quotes) == 17
    assert again == []  # no provider has a new as-of date
    by_key = {(q.provider, q.base): q for q in quotes}
    assert {p for p, _ in by_key} == {"cbr", "nbk", "nbkr", "cbu", "cbt"}
    assert by_key[("nbk", "KZT")].rate == 1 / Decimal("334.41")
    assert by_key[("nbk", "KZT")].as_of.isoformat() == "2016-04-18"
    assert by_key[("nbkr", "KGS")].rate == 1 / Decimal("84.7999")
    assert by_key[("cbu", "UZS")].rate == 1 / Decimal("11344.69")
    assert by_key[("cbt", "TMT")].rate == 1 / Decimal("3.5")
    primaries = {q.base: q.provider for q in quotes if q.primary}
    assert primaries == {"KZT": "nbk", "KGS": "nbkr", "UZS": "cbu", "TJS": "cbr", "TMT": "cbt"}
    assert all(q.stale_after is not None and q.stale_after > q.as_of for q in quotes)


async def test_providers_disagreeing_on_the_same_date_flag_the_quote(
    redis: Redis,
    namespace: Namespace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
) -> None:
    settings = _providers_file(
        settings,
        tmp_path,
        f"""
        [crosscheck]
        tolerance_pct = "0.2"
        [primary]
        TJS = "nbt"
        [[providers]]
        name = "cbr"
        kind = "cbr"
        url = "{CBR_FILE}"
        [[providers]]
        name = "nbt"
        kind = "nbt"
        url = "{NBT_FIXTURE}"
    """,
    )
    published = await ratefeed_once(settings)

    flagged = {(q.provider, q.base): q.flags for q in published if q.flags}
    # KGS: 0.1229/10.9430 from NBT against 1.08486/96.2378 through the rouble, 0.37% apart;
    # TJS (0.16%), UZS (0.15%) and KZT (0.05%) are within the tolerance.
    assert flagged == {("nbt", "KGS"): ["disagrees:cbr"], ("cbr", "KGS"): ["disagrees:nbt"]}
    assert len(published) == 5 + 4  # flagged quotes are still published
    assert "providers disagree" in capsys.readouterr().out


@pytest.mark.faults
async def test_absurd_numbers_are_left_out_logged_and_counted_and_the_rest_published(
    redis: Redis,
    namespace: Namespace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
) -> None:
    provider = f"cbr-{namespace.index_prefix.strip('-')}"
    document = tmp_path / "cbr-absurd.xml"
    document.write_text(
        CBR_FILE.read_text(encoding="utf-8")
        .replace("<Value>20,3042</Value>", "<Value>1E+999999</Value>")
        .replace("<Value>78,8438</Value>", "<Value>1E-999999</Value>"),
        encoding="utf-8",
    )
    settings = _one_cbr(settings, tmp_path, provider, document)
    # A last rate stored before rates were bounded: no change can be computed from it.
    await LastRateStore(redis, namespace.stream_prefix).put(
        provider, "KGS", LastRate(date(2023, 9, 26), Decimal("1E-999999"))
    )

    published = await ratefeed_once(settings)

    assert sorted(q.base for q in published) == ["KGS", "TJS", "TMT"]
    kgs = next(q for q in published if q.base == "KGS")
    assert (kgs.change_pct, kgs.previous_rate) == (None, None)
    assert REGISTRY.get_sample_value("caravan_ratefeed_left_out_total", {"provider": provider}) == 2
    logged = capsys.readouterr().out
    left_out = [line for line in logged.splitlines() if "rate entry left out" in line]
    assert len(left_out) == 2
    assert all(f"provider={provider}" in line for line in left_out)  # bound per reading
    assert "provider value must be between 1E-9 and 1E+9, not '1E+999999'" in logged
    assert "stored rate ignored" in logged


@pytest.mark.parametrize("failure", ["damaged state", "catch-up broken"])
async def test_a_broken_catch_up_costs_the_missed_days_never_the_reading(
    redis: Redis,
    namespace: Namespace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    # The catch-up runs outside the provider's own poll: before, its failure stopped
    # the feed (a date of year 1, or a stored date that does not read, did).
    provider = f"cbr-{namespace.index_prefix.strip('-')}"
    history = f'history_url = "{tmp_path}/{{date:%d.%m.%Y}}.xml"'
    settings = _one_cbr(settings, tmp_path, provider, CBR_FILE, history)
    store = LastRateStore(redis, namespace.stream_prefix)
    await store.put(provider, "KZT", LastRate(date(2023, 9, 20), Decimal("0.0021")))
    if failure == "damaged state":
        key = f"{namespace.stream_prefix}ratefeed:last:{provider}:KGS"
        await redis.hset(key, mapping={"as_of": "2023-13-45", "rate": "0.0112"})
    else:

        async def broken(*_: object) -> AsyncIterator[object]:
            raise ZeroDivisionError("a defect in the catch-up")
            yield  # an async generator, as the catch-up is

        monkeypatch.setattr("services.ratefeed.worker._catch_up", broken)

    published = await ratefeed_once(settings)

    assert sorted(q.base for q in published) == ["KGS", "KZT", "TJS", "TMT", "UZS"]
    logged = capsys.readouterr().out
    said = "stored rate ignored" if failure == "damaged state" else "missed days not caught up"
    assert said in logged


async def test_days_caught_up_before_the_deadline_are_published(
    redis: Redis,
    namespace: Namespace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Cut short by the deadline, the catch-up's days already read were dropped, and the
    # reading of today moved the stored day past them: missed for good.
    provider = f"cbr-{namespace.index_prefix.strip('-')}"
    for day in range(21, 27):
        text = CBR_FILE.read_text(encoding="utf-8").replace("27.09.2023", f"{day}.09.2023")
        (tmp_path / f"{day}.09.2023.xml").write_text(text, encoding="utf-8")
    history = f'history_url = "{tmp_path}/{{date:%d.%m.%Y}}.xml"'
    settings = _one_cbr(settings, tmp_path, provider, CBR_FILE, history)
    settings = replace(
        settings, ratefeed=settings.ratefeed.model_copy(update={"provider_deadline": 1})
    )
    await LastRateStore(redis, namespace.stream_prefix).put(
        provider, "KZT", LastRate(date(2023, 9, 20), Decimal("0.0021"))
    )
    read = worker.read_provider
    days_read = asyncio.Event()

    async def slow_history(*args: Any) -> Any:
        if args[-1] is not None and days_read.is_set():
            await asyncio.Event().wait()  # the rest of the days: past the deadline
        reading = await read(*args)
        if args[-1] is not None and reading.rates.as_of == date(2023, 9, 22):
            days_read.set()
        return reading

    monkeypatch.setattr(worker, "read_provider", slow_history)
    published = await ratefeed_once(settings)

    days = sorted({q.as_of.isoformat() for q in published if q.base == "KZT"})
    assert days == ["2023-09-21", "2023-09-22", "2023-09-27"]
    assert "not done within 1s" in capsys.readouterr().out


async def test_a_history_answering_todays_document_again_is_not_published_twice(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    # Each missed day's history answered with a document dated today, another rate in
    # it: two versions of today's quote fetched at one moment, the index keeping the
    # first and the feed remembering the second.
    provider = f"cbr-{namespace.index_prefix.strip('-')}"
    other = CBR_FILE.read_text(encoding="utf-8").replace(
        "<Value>20,3042</Value>", "<Value>20,9</Value>"
    )
    for day in range(24, 27):
        (tmp_path / f"{day}.09.2023.xml").write_text(other, encoding="utf-8")
    history = f'history_url = "{tmp_path}/{{date:%d.%m.%Y}}.xml"'
    settings = _one_cbr(settings, tmp_path, provider, CBR_FILE, history)
    store = LastRateStore(redis, namespace.stream_prefix)
    await store.put(provider, "KZT", LastRate(date(2023, 9, 23), Decimal("0.0021")))

    published = await ratefeed_once(settings)

    kzt = [q for q in published if q.base == "KZT"]
    assert [q.as_of for q in kzt] == [date(2023, 9, 27)]
    today = await store.get(provider, "KZT")
    assert today is not None
    assert today.rate == kzt[0].rate  # the poll's own document, remembered as published
    assert [q.idempotency_key for q in await _quotes(redis, namespace) if q.base == "KZT"] == [
        kzt[0].idempotency_key
    ]


def _jumped(text: str, day: str, kzt_value: str) -> bytes:
    return (
        text.replace('Date="27.09.2023"', f'Date="{day}"')
        .replace("<Value>20,3042</Value>", f"<Value>{kzt_value}</Value>")
        .encode()
    )


async def test_a_jump_no_other_provider_confirms_is_quarantined_with_the_reason(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    settings = _providers_file(
        settings,
        tmp_path,
        f"""
        [crosscheck]
        jump_pct = "5"
        [[providers]]
        name = "cbr"
        kind = "cbr"
        url = "{CBR_FILE}"
    """,
    )
    next_day = tmp_path / "cbr-28.xml"
    next_day.write_bytes(_jumped(CBR_FILE.read_text(encoding="utf-8"), "28.09.2023", "24,3650"))
    await ratefeed_once(settings, str(CBR_FILE))
    published = await ratefeed_once(settings, str(next_day), "cbr")

    assert sorted(q.base for q in published) == ["KGS", "TJS", "TMT", "UZS"]
    assert all(q.change_pct == 0 for q in published)
    [letter] = await _dead_letters(redis, namespace)
    assert letter.error_class == "RateJump"
    assert letter.stream == namespace.streams.quotes
    assert letter.entry_id == "KZT-USD-2023-09-28-cbr"
    assert "KZT/USD moved 19.9998% from" in letter.error_message
    assert "no other provider confirms it" in letter.error_message
    held = QuoteEvent.model_validate_json(letter.payload)
    assert held.rate == Decimal("0.243650") / Decimal("96.2378")
    # The quarantined rate is not remembered: the day after compares with the last good one.
    third = tmp_path / "cbr-29.xml"
    third.write_bytes(_jumped(CBR_FILE.read_text(encoding="utf-8"), "29.09.2023", "20,3042"))
    [kzt] = [q for q in await ratefeed_once(settings, str(third), "cbr") if q.base == "KZT"]
    assert kzt.change_pct == 0


def _devaluation(settings: Settings, tmp_path: Path) -> tuple[Settings, Path, Path]:
    """The CBR and the NBT as providers (jumps past 5 % held), and each one's document
    of the next day with the same devaluation of the tenge."""
    with_providers = _providers_file(
        settings,
        tmp_path,
        f"""
        [crosscheck]
        jump_pct = "5"
        [[providers]]
        name = "cbr"
        kind = "cbr"
        url = "{CBR_FILE}"
        [[providers]]
        name = "nbt"
        kind = "nbt"
        url = "{NBT_FIXTURE}"
    """,
    )
    cbr_next = tmp_path / "cbr-28.xml"
    cbr_next.write_bytes(_jumped(CBR_FILE.read_text(encoding="utf-8"), "28.09.2023", "24,3650"))
    # NBT states the same devaluation the same day: KZT/USD = 0.02430 / 10.9430 * ...
    nbt_next = tmp_path / "nbt-28.xml"
    kzt_in_tjs = (Decimal("0.243650") / Decimal("96.2378") * Decimal("10.9430")).quantize(
        Decimal("0.000001")
    )
    nbt_next.write_text(
        NBT_FIXTURE.read_text(encoding="utf-8")
        .replace('Date="27.09.2023"', 'Date="28.09.2023"')
        .replace("<Value>0.0231</Value>", f"<Value>{kzt_in_tjs}</Value>"),
        encoding="utf-8",
    )
    return with_providers, cbr_next, nbt_next


async def test_a_jump_a_second_provider_confirms_is_published(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    settings, cbr_next, nbt_next = _devaluation(settings, tmp_path)
    await ratefeed_once(settings, str(CBR_FILE))
    await ratefeed_once(settings, str(nbt_next), "nbt")
    published = await ratefeed_once(settings, str(cbr_next), "cbr")

    [kzt] = [q for q in published if q.base == "KZT"]
    assert kzt.change_pct is not None
    assert kzt.change_pct > 19
    assert await _dead_letters(redis, namespace) == []


async def test_a_held_jump_a_second_provider_confirms_later_is_published_on_the_next_read(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    settings, cbr_next, nbt_next = _devaluation(settings, tmp_path)
    await ratefeed_once(settings, str(CBR_FILE))
    # The devaluation read first from the CBR, held; the NBT states it hours later.
    assert [q for q in await ratefeed_once(settings, str(cbr_next), "cbr") if q.base == "KZT"] == []
    await ratefeed_once(settings, str(nbt_next), "nbt")
    published = await ratefeed_once(settings, str(cbr_next), "cbr")

    [kzt] = [q for q in published if q.base == "KZT"]
    assert (kzt.as_of, kzt.flags) == (date(2023, 9, 28), ["jump:confirmed"])
    assert kzt.change_pct is not None
    assert kzt.change_pct > 19
    [letter] = await _dead_letters(redis, namespace)
    assert letter.entry_id == kzt.idempotency_key
    # Published, so no longer held: nothing left to release.
    with pytest.raises(RatesError, match="is not held"):
        await ratefeed_release(settings, [letter.entry_id])
    assert await ratefeed_once(settings, str(cbr_next), "cbr") == []


async def test_a_failing_provider_does_not_stop_the_others(
    redis: Redis,
    namespace: Namespace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    server: LoopbackServer,
    server_settings: Settings,
) -> None:
    server.routes["/slow"] = _slow(CBR_FILE.read_bytes(), 1.5)
    server.routes["/html"] = static(
        b"<!DOCTYPE html><html><body><h1>Service Unavailable</h1></body></html>", "text/html"
    )
    future = tmp_path / "nbkr-future.xml"
    future.write_text(
        (REALDATA / "nbkr-daily-2020-12-14.xml")
        .read_text(encoding="utf-8")
        .replace('Date="14.12.2020"', 'Date="14.12.2099"'),
        encoding="utf-8",
    )
    # Read, but no rate against the dollar in it: before, /readyz showed it healthy.
    no_dollar = tmp_path / "cbr-without-usd.xml"
    no_dollar.write_text(
        re.sub(
            r"<Valute ID=\"R01235\">.*?</Valute>",
            "",
            CBR_FILE.read_text(encoding="utf-8"),
            flags=re.DOTALL,
        ),
        encoding="utf-8",
    )
    server_settings = _providers_file(
        server_settings,
        tmp_path,
        f"""
        [[providers]]
        name = "cbr"
        kind = "cbr"
        url = "{server.url("/slow")}"
        [[providers]]
        name = "cbt"
        kind = "cbr"
        url = "{no_dollar}"
        [[providers]]
        name = "nbk"
        kind = "nbk"
        url = "{server.url("/html")}"
        [[providers]]
        name = "nbkr"
        kind = "nbkr"
        url = "{future}"
        [[providers]]
        name = "cbu"
        kind = "cbu"
        url = "{REALDATA / "cbu-uz-rates-2022-04-11.json"}"
    """,
        timeout=0.3,
    )
    published = await ratefeed_once(server_settings)

    assert {q.provider for q in published} == {"cbu"}
    assert len(published) == 5
    assert len(await _quotes(redis, namespace)) == 5
    failures = [
        line for line in capsys.readouterr().out.splitlines() if "rates poll failed" in line
    ]
    # Bound in each provider's own task of the poll, so never another provider's name.
    assert sorted(re.findall(r"provider=(\w+)", " ".join(failures))) == [
        "cbr",
        "cbt",
        "nbk",
        "nbkr",
    ]


async def test_a_provider_past_its_deadline_does_not_hold_the_others(
    redis: Redis,
    namespace: Namespace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    server: LoopbackServer,
    server_settings: Settings,
) -> None:
    # Its answer within each fetch's timeout, but late: every provider's quotes waited
    # for it (a source dripping its answer held them for minutes, hours with catch-up).
    server.routes["/slow"] = _slow(CBR_FILE.read_bytes(), 3)
    server_settings = _providers_file(
        server_settings,
        tmp_path,
        f"""
        [[providers]]
        name = "cbr"
        kind = "cbr"
        url = "{server.url("/slow")}"
        [[providers]]
        name = "cbu"
        kind = "cbu"
        url = "{REALDATA / "cbu-uz-rates-2022-04-11.json"}"
    """,
        timeout=10.0,
        provider_deadline=0.5,
    )
    published = await ratefeed_once(server_settings)

    assert {q.provider for q in published} == {"cbu"}
    assert len(await _quotes(redis, namespace)) == 5
    failed = [line for line in capsys.readouterr().out.splitlines() if "rates poll failed" in line]
    assert len(failed) == 1
    assert "provider=cbr" in failed[0]
    assert "not done within 0.5s" in failed[0]


async def test_a_document_of_no_known_provider_is_refused(
    redis: Redis, namespace: Namespace, settings: Settings
) -> None:
    with pytest.raises(WrongFormat, match="not a rates document of a known provider"):
        await ratefeed_once(settings, str(REALDATA / "feed-heise-developer.atom"))
    assert await redis.exists(namespace.streams.quotes) == 0


async def test_backfill_reads_each_day_from_the_history_url(
    redis: Redis,
    namespace: Namespace,
    tmp_path: Path,
    server: LoopbackServer,
    server_settings: Settings,
) -> None:
    text = CBR_FILE.read_text(encoding="utf-8")
    day_after = (
        text.replace('Date="27.09.2023"', 'Date="28.09.2023"')
        .replace("<Value>96,2378</Value>", "<Value>96,5000</Value>")
        .encode()
    )
    server.routes["/cbr?date_req=27/09/2023"] = static(CBR_FILE.read_bytes(), "application/xml")
    server.routes["/cbr?date_req=28/09/2023"] = static(day_after, "application/xml")
    # Like a weekend: the service answers with the last business day's document.
    server.routes["/cbr?date_req=29/09/2023"] = static(day_after, "application/xml")
    server.routes["/nbk?fdate=18.04.2016"] = static(
        (REALDATA / "nbk-rates-all-2016-04-18.xml").read_bytes(), "application/xml"
    )
    server.routes["/cbu/2022-04-11/"] = static(
        (REALDATA / "cbu-uz-rates-2022-04-11.json").read_bytes(), "application/json"
    )
    server_settings = _providers_file(
        server_settings,
        tmp_path,
        f"""
        [[providers]]
        name = "cbr"
        kind = "cbr"
        url = "{CBR_FILE}"
        history_url = "{server.url("/cbr?date_req=")}{{date:%d/%m/%Y}}"
        [[providers]]
        name = "nbk"
        kind = "nbk"
        url = "{CBR_FILE}"
        history_url = "{server.url("/nbk?fdate=")}{{date:%d.%m.%Y}}"
        [[providers]]
        name = "cbu"
        kind = "cbu"
        url = "{CBR_FILE}"
        history_url = "{server.url("/cbu/")}{{date:%Y-%m-%d}}/"
    """,
    )
    cbr = await ratefeed_backfill(server_settings, date(2023, 9, 26), date(2023, 9, 29), "cbr")
    others = [
        *await ratefeed_backfill(server_settings, date(2016, 4, 18), date(2016, 4, 18), "nbk"),
        *await ratefeed_backfill(server_settings, date(2022, 4, 11), date(2022, 4, 11), "cbu"),
    ]

    assert [r for r in server.paths() if r.startswith("/cbr")] == [
        "/cbr?date_req=26/09/2023",
        "/cbr?date_req=27/09/2023",
        "/cbr?date_req=28/09/2023",
        "/cbr?date_req=29/09/2023",
    ]
    assert sorted((q.as_of.isoformat(), q.base) for q in cbr) == sorted(
        (day, base)
        for day in ("2023-09-27", "2023-09-28")
        for base in ("KGS", "KZT", "TJS", "UZS", "TMT")
    )
    [kzt_28] = [q for q in cbr if q.base == "KZT" and q.as_of.isoformat() == "2023-09-28"]
    kzt_27 = Decimal("0.203042") / Decimal("96.2378")
    assert kzt_28.previous_rate == kzt_27
    assert kzt_28.rate == Decimal("0.203042") / Decimal("96.5000")
    assert kzt_28.change_pct == (kzt_28.rate - kzt_27) / kzt_27 * 100
    assert {(q.provider, q.as_of.isoformat()) for q in others} == {
        ("nbk", "2016-04-18"),
        ("cbu", "2022-04-11"),
    }
    assert len(await _quotes(redis, namespace)) == 10 + len(others)


async def test_readiness_details_say_which_providers_are_stale(
    redis: Redis, namespace: Namespace, settings: Settings
) -> None:
    config = load_rates_config(REPO / "samples" / "rates.toml")
    status = ProviderStatus(config.providers)
    status.read("cbr", date(2023, 9, 27))
    status.failed("nbkr", FetchError("https://www.nbkr.kg/XML/daily.xml: HTTP 503"))

    readiness = (await readiness_probe(ServiceContext("ratefeed", settings), status)()).as_json()

    assert readiness["ready"] is True  # a stale bank is no reason to restart the feed
    providers = readiness["details"]["providers"]
    assert providers["cbr"] == {"as_of": "2023-09-27", "stale": True, "error": None}
    assert providers["nbkr"]["error"] == "https://www.nbkr.kg/XML/daily.xml: HTTP 503"
    assert set(providers) == {"cbr", "nbk", "nbkr", "cbu", "cbt"}
