"""How many entries the indexer asks Redis for next (shared/consumer.py), and its claims."""

from __future__ import annotations

from typing import Any, cast

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError

from shared.consumer import Entry, GroupReader, next_read

MIB = 1024 * 1024


def _read(count: int, size: int) -> list[Entry]:
    # A field name of eight bytes, as `__data__`, and a value making up the size.
    return [Entry("articles", f"{n}-0", {b"__data__": b"x" * (size - 8)}) for n in range(count)]


def test_a_full_read_of_small_entries_doubles_the_next_up_to_the_batch() -> None:
    assert next_read(8, _read(8, 1000), most=1000, budget=32 * MIB) == 16
    assert next_read(512, _read(512, 1000), most=1000, budget=32 * MIB) == 1000


def test_a_read_that_was_not_full_does_not_grow_it() -> None:
    assert next_read(64, _read(10, 1000), most=1000, budget=32 * MIB) == 64
    assert next_read(64, [], most=1000, budget=32 * MIB) == 64


def test_large_entries_shrink_it_to_what_the_budget_holds_at_their_mean_size() -> None:
    assert next_read(1000, _read(1000, 1 * MIB), most=1000, budget=32 * MIB) == 32
    mixed = _read(3, 10 * MIB) + _read(1, 2 * MIB)  # 8 MiB each on the mean
    assert next_read(4, mixed, most=1000, budget=32 * MIB) == 4


def test_an_entry_larger_than_the_budget_is_still_read_one_at_a_time() -> None:
    assert next_read(8, _read(1, 40 * MIB), most=1000, budget=32 * MIB) == 1


class _SecondStreamAway:
    """Redis as a reader's claims see it: the first stream answers, the second is away."""

    async def xautoclaim(self, stream: str, *_: object, **__: object) -> list[Any]:
        if stream == "quotes":
            raise ConnectionError("connection refused")
        return [b"0-0", [(b"1-0", {b"__data__": b"{}"})], []]

    async def xpending_range(self, *_: object, **__: object) -> list[dict[str, Any]]:
        return [{"message_id": b"1-0", "times_delivered": 2}]


async def test_claims_made_before_redis_went_away_are_handed_out() -> None:
    reader = GroupReader(
        cast("Redis", _SecondStreamAway()),
        ["articles", "quotes"],
        "indexer",
        "heir",
        batch_size=100,
        block_ms=50,
        linger_ms=0,
        claim_idle_ms=1000,
    )
    (claimed,) = await reader.claim_abandoned()
    assert (claimed.entry_id, claimed.deliveries) == ("1-0", 2)
    # Nothing claimed at all: Redis away is the caller's to wait out.
    with pytest.raises(ConnectionError):
        await reader.claim_abandoned()
