"""The rate feed's stored rates on the real Redis, fenced by the poller's lease."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from services.ratefeed.rates import LastRate
from services.ratefeed.store import LastRateStore
from shared.events import QuoteEvent
from shared.leases import LeaseLost, WorkShare
from tests.conftest import Namespace

pytestmark = pytest.mark.integration


def _quote(day: int, rate: str) -> QuoteEvent:
    return QuoteEvent(
        base="KZT",
        rate=Decimal(rate),
        as_of=date(2026, 1, day),
        provider="nbk",
        fetched_at=datetime(2026, 1, day, tzinfo=UTC),
    )


async def test_a_poller_that_lost_its_lease_writes_nothing_and_may_not_publish(
    redis: Redis, namespace: Namespace
) -> None:
    store = LastRateStore(redis, namespace.stream_prefix)
    old = WorkShare(redis, namespace.stream_prefix, "ratefeed", ["providers"], "old", ttl=30)
    new = WorkShare(redis, namespace.stream_prefix, "ratefeed", ["providers"], "new", ttl=30)
    stale = await old.turn("providers")
    await store.under(stale).put("nbk", "KZT", LastRate(date(2026, 1, 1), Decimal("0.0020")))

    # The old poller stalls past its lease; the new one takes the next token.
    await redis.delete(stale.key)
    fresh = await new.turn("providers")
    assert fresh.token == stale.token + 1
    successors = LastRate(date(2026, 1, 2), Decimal("0.0021"), date(2026, 1, 1), Decimal("0.0020"))
    await store.under(fresh).put("nbk", "KZT", successors)
    await store.under(fresh).put_held("nbk", "KZT", [_quote(3, "0.0030")])

    late = store.under(stale)
    with pytest.raises(LeaseLost):
        await late.put("nbk", "KZT", LastRate(date(2026, 1, 5), Decimal("0.0019")))
    with pytest.raises(LeaseLost):
        await late.put_held("nbk", "KZT", [])
    assert await store.get("nbk", "KZT") == successors
    assert [e.as_of for e in await store.held("nbk", "KZT")] == [date(2026, 1, 3)]


async def test_one_shot_commands_write_without_a_lease(redis: Redis, namespace: Namespace) -> None:
    store = LastRateStore(redis, namespace.stream_prefix)
    await store.put_held("nbk", "KZT", [_quote(4, "0.0030"), _quote(3, "0.0031")])
    assert [e.as_of for e in await store.held("nbk", "KZT")] == [date(2026, 1, 3), date(2026, 1, 4)]
    await store.put_held("nbk", "KZT", [])
    assert await store.held("nbk", "KZT") == []
    first = LastRate(date(2026, 1, 1), Decimal("0.0020"), date(2025, 12, 31), Decimal("0.0019"))
    await store.put("nbk", "KZT", first)
    # A baseline without a previous rate replaces the whole hash, not only its fields.
    second = LastRate(date(2026, 1, 2), Decimal("0.0021"))
    await store.put("nbk", "KZT", second)
    assert await store.get("nbk", "KZT") == second


async def test_quotes_stored_before_rates_were_bounded_are_forgotten_not_fatal(
    redis: Redis, namespace: Namespace
) -> None:
    store = LastRateStore(redis, namespace.stream_prefix)
    await store.put_held("nbk", "KZT", [_quote(2, "0.0021")])
    await store.remember_published([_quote(1, "0.0020"), _quote(3, "0.0022")])
    # The same quotes as an older version of the contract let them be kept: a rate of
    # 1E-12 (held jumps are where absurd rates were kept). Every poll read them again.
    absurd = _quote(2, "0.0021").model_dump_json().replace('"0.0021"', '"1E-12"')
    await redis.hset(f"{namespace.stream_prefix}ratefeed:held:nbk:KZT", "2026-01-04", absurd)
    history = f"{namespace.stream_prefix}ratefeed:history:nbk:KZT"
    await redis.zadd(history, {absurd: date(2026, 1, 2).toordinal()})

    assert [q.as_of.day for q in await store.held("nbk", "KZT")] == [2]
    before, same, after = await store.published("nbk", "KZT", date(2026, 1, 2))
    assert same is None
    assert before is not None
    assert (before.as_of.day, before.rate) == (1, Decimal("0.0020"))
    assert after is not None
    assert (after.as_of.day, after.rate) == (3, Decimal("0.0022"))


async def test_a_key_of_another_type_is_forgotten_not_a_poll_restarted_for_ever(
    redis: Redis, namespace: Namespace
) -> None:
    # Set by hand where the store keeps a hash or a sorted set: every read was refused
    # (WRONGTYPE), taken for Redis away, and the whole poll restarted every few seconds.
    store = LastRateStore(redis, namespace.stream_prefix)
    keys = [
        f"{namespace.stream_prefix}ratefeed:{kind}:nbk:KZT" for kind in ("last", "held", "history")
    ]
    for key in keys:
        await redis.set(key, "oops")

    assert await store.get("nbk", "KZT") is None
    assert await store.held("nbk", "KZT") == []
    assert await store.published("nbk", "KZT", date(2026, 1, 2)) == (None, None, None)
    assert await redis.exists(*keys) == 0
    # And written again as the store keeps them.
    await store.remember_published([_quote(1, "0.0020")])
    before, _, _ = await store.published("nbk", "KZT", date(2026, 1, 2))
    assert before is not None
