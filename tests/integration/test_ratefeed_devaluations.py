"""Real devaluations in the providers' own formats, then the real documents years later.

The fixtures (samples/fixtures/devaluations/README.md says where each value was
published) go through the rate feed one document at a time, as polls would
bring them, against the real Redis; what is asserted is what a reader gets on
the quotes stream and what an operator gets on the dead letters.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.ratefeed.app import ratefeed_once, ratefeed_release
from services.ratefeed.providers import RatesError
from shared.events import DeadLetter, QuoteEvent
from shared.settings import Settings
from shared.streams import DATA_FIELD
from tests.acl import refusing
from tests.conftest import REALDATA, REPO, Namespace
from tests.streams import entries

pytestmark = pytest.mark.integration

FIXTURES = REPO / "samples" / "fixtures" / "devaluations"


def _providers_file(settings: Settings, tmp_path: Path, name: str) -> Settings:
    """`settings` with a providers file of the one provider `name`, reading the fixtures."""
    path = tmp_path / "rates.toml"
    path.write_text(
        f"""
        [crosscheck]
        jump_pct = "5"
        [[providers]]
        name = "{name}"
        kind = "{name}"
        url = "{FIXTURES}"
    """,
        encoding="utf-8",
    )
    return replace(settings, ratefeed=settings.ratefeed.model_copy(update={"providers": path}))


async def _stream(redis: Redis, namespace: Namespace, base: str) -> list[QuoteEvent]:
    quotes = [
        QuoteEvent.model_validate_json(fields[DATA_FIELD])
        for _, fields in await entries(redis, namespace.streams.quotes)
    ]
    return [q for q in quotes if q.base == base]


async def _letters(redis: Redis, namespace: Namespace) -> list[DeadLetter]:
    return [
        DeadLetter.model_validate_json(fields[DATA_FIELD])
        for _, fields in await entries(redis, namespace.streams.deadletters)
    ]


def _pct(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.01"))


async def test_the_tenge_float_of_2015_is_held_then_published_when_repeated(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    settings = _providers_file(settings, tmp_path, "nbk")
    for day in ("19", "20", "20", "21", "25"):  # the 20th twice: a re-poll
        await ratefeed_once(settings, str(FIXTURES / f"nbk-2015-08-{day}.xml"), "nbk")
    # Eight months later: the real NBK document of 2016-04-18.
    await ratefeed_once(settings, str(REALDATA / "nbk-rates-all-2016-04-18.xml"), "nbk")

    kzt = await _stream(redis, namespace, "KZT")
    assert [(q.as_of.isoformat(), q.rate, _pct(q.change_pct), q.flags) for q in kzt] == [
        ("2015-08-19", 1 / Decimal("188.38"), None, []),
        ("2015-08-20", 1 / Decimal("255.26"), Decimal("-26.20"), ["jump:repeated"]),
        ("2015-08-21", 1 / Decimal("252.47"), Decimal("1.11"), ["jump:repeated"]),
        ("2015-08-25", 1 / Decimal("230.11"), None, ["gap", "jump:repeated"]),
        ("2016-04-18", 1 / Decimal("334.41"), None, ["gap"]),
    ]
    assert kzt[-1].previous_as_of == date(2015, 8, 25)
    # One dead letter per held quote, none for the re-poll.
    assert [letter.entry_id for letter in await _letters(redis, namespace)] == [
        "KZT-USD-2015-08-20-nbk",
        "KZT-USD-2015-08-21-nbk",
    ]


async def _the_day_before(settings: Settings, tmp_path: Path) -> Settings:
    """Settings reading the CBU fixtures, the sum's rate of 2017-09-04 polled."""
    settings = _providers_file(settings, tmp_path, "cbu")
    await ratefeed_once(settings, str(FIXTURES / "cbu-2017-09-04.json"), "cbu")
    return settings


async def _devaluation_held_once(redis: Redis, namespace: Namespace, settings: Settings) -> None:
    """The poll of 2017-09-05 holds the devaluation, with one dead letter for it."""
    assert await ratefeed_once(settings, str(FIXTURES / "cbu-2017-09-05.json"), "cbu") == []
    [letter] = await _letters(redis, namespace)
    assert letter.entry_id == "UZS-USD-2017-09-05-cbu"


async def test_a_held_quote_and_its_dead_letter_are_written_together(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    # Redis refuses the write of the hold (an ACL without EVAL here; a failover or a lost
    # lease in production). Before, the letter had gone out on its own: the next poll,
    # finding nothing held, wrote a second one.
    settings = await _the_day_before(settings, tmp_path)
    async with refusing(redis, "eval") as refused:
        with pytest.raises(RedisError):
            await ratefeed_once(
                replace(settings, redis=refused), str(FIXTURES / "cbu-2017-09-05.json"), "cbu"
            )
    assert await _letters(redis, namespace) == []

    assert await ratefeed_once(settings, str(FIXTURES / "cbu-2017-09-05.json"), "cbu") == []
    await _devaluation_held_once(redis, namespace, settings)


async def test_a_hold_is_not_kept_when_its_letter_is_refused(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    # The dead letters' key of another type for a moment: the hold was written before
    # the refused letter, and the next poll, finding it held already, wrote none.
    settings = await _the_day_before(settings, tmp_path)
    await redis.set(namespace.streams.deadletters, "another type")
    with pytest.raises(RedisError, match="WRONGTYPE"):
        await ratefeed_once(settings, str(FIXTURES / "cbu-2017-09-05.json"), "cbu")
    await redis.delete(namespace.streams.deadletters)

    await _devaluation_held_once(redis, namespace, settings)


async def test_a_stored_rate_dated_in_the_future_is_no_baseline_for_good(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    # Restored, set by hand or from a clock far ahead: every quote after it was "late",
    # published unjudged against it, and the baseline never moved again.
    settings = await _the_day_before(settings, tmp_path)
    last = f"{namespace.stream_prefix}ratefeed:last:cbu:UZS"
    await redis.hset(last, "as_of", "9999-12-31")
    await ratefeed_once(settings, str(FIXTURES / "cbu-2017-09-04.json"), "cbu")
    assert await redis.hget(last, "as_of") == b"2017-09-04"
    # Judged against it again: the devaluation of the next day is held.
    await _devaluation_held_once(redis, namespace, settings)


async def test_the_sum_devaluation_of_2017_is_released_by_an_operator(
    redis: Redis, namespace: Namespace, tmp_path: Path, settings: Settings
) -> None:
    settings = _providers_file(settings, tmp_path, "cbu")
    await ratefeed_once(settings, str(FIXTURES / "cbu-2017-09-04.json"), "cbu")
    assert await ratefeed_once(settings, str(FIXTURES / "cbu-2017-09-05.json"), "cbu") == []
    assert await ratefeed_once(settings, str(FIXTURES / "cbu-2017-09-05.json"), "cbu") == []
    [letter] = await _letters(redis, namespace)
    assert "UZS/USD moved -48.0204% from" in letter.error_message

    [released] = await ratefeed_release(settings, [letter.entry_id])
    with pytest.raises(RatesError, match="is not held"):
        await ratefeed_release(settings, [letter.entry_id])
    # Four and a half years later: the real CBU document of 2022-04-11.
    await ratefeed_once(settings, str(REALDATA / "cbu-uz-rates-2022-04-11.json"), "cbu")

    uzs = await _stream(redis, namespace, "UZS")
    assert [(q.as_of.isoformat(), q.rate, _pct(q.change_pct), q.flags) for q in uzs] == [
        ("2017-09-04", 1 / Decimal("4210.35"), None, []),
        ("2017-09-05", 1 / Decimal("8100.00"), Decimal("-48.02"), ["jump:released"]),
        ("2022-04-11", 1 / Decimal("11344.69"), None, ["gap"]),
    ]
    assert released.event_id == QuoteEvent.model_validate_json(letter.payload).event_id
    assert uzs[-1].previous_rate == 1 / Decimal("8100.00")  # the release moved the baseline
