"""A round of claims (shared/consumer.py) when Redis goes away in the middle of it."""

from __future__ import annotations

from typing import Any, cast

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError

from shared.consumer import GroupReader


class _SecondStreamAway:
    """Redis as a reader's claims see it: the first stream answers, the second is away."""

    async def eval(self, _script: str, _keys: int, stream: str, *_: object) -> list[Any]:
        if stream == "quotes":
            raise ConnectionError("connection refused")
        return [b"0-0", [(b"1-0", [b"__data__", b"{}"])], [2], []]


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
