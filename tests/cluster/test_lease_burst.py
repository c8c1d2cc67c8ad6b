"""A replica sharing 400 items takes every lease, and reads its state, at once on a Redis Cluster.

The cluster client's pool cannot wait for a connection: past 100 a node it refuses a
call at once (MaxConnectionsError), and every lease lives on one node (one hash tag).
Ingest starting with hundreds of sources asked for all their leases together, and
failed most of them, its heartbeat too; a share keeps its item calls to a bound, and
ingest's state its reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, cast
from uuid import uuid4

import pytest

from services.ingest.state import IngestState, Record
from shared import leases
from shared.clients import make_redis
from shared.leases import WorkShare
from shared.settings import RedisSettings
from tests.logs import Said

pytestmark = pytest.mark.cluster

ITEMS = [f"s{n}" for n in range(400)]


async def _beating(share: WorkShare, calls: list[Awaitable[Any]]) -> int:
    """`calls` all at once, the heartbeat beating (raising if it fails) from when they
    are all in flight until they are done; how many beats there were."""
    left = len(calls)

    async def call(made: Awaitable[Any]) -> None:
        nonlocal left
        await made
        left -= 1

    async def beat() -> int:
        beats = 0
        while left:
            await share.beat()
            beats += 1
        return beats

    # Tasks start in order: the first beat is sent behind every call.
    *_, beats = await asyncio.gather(*map(call, calls), beat())
    return cast("int", beats)


async def test_a_share_of_400_items_takes_every_lease_at_once_and_keeps_beating(
    redis_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = Said()
    monkeypatch.setattr(leases, "log", said)
    redis = make_redis(RedisSettings(url=redis_cluster, cluster=True))
    prefix = f"{{burst-{uuid4().hex[:10]}}}:"
    share = WorkShare(redis, prefix, "ingest", ITEMS, "a", ttl=30)
    try:
        await share.join()
        assert await _beating(share, [share.turn(item) for item in ITEMS]) >= 1
        assert share.held == sorted(ITEMS)
        # Every item next due at the same time: its writes go all at once too.
        assert await _beating(share, [share.done(item, 60) for item in ITEMS]) >= 1
        holders = [f"{prefix}lease:holder:ingest:{item}" for item in ITEMS]
        values = await redis.mget(holders)
        assert all(isinstance(value, bytes) and value.startswith(b"a:") for value in values)
        assert said.events("lease not taken") == []
        assert said.events("next turn not recorded") == []
        assert said.events("lease lost") == []
        assert share.held == sorted(ITEMS)

        await share.release_all()
        assert await redis.exists(*holders) == 0
    finally:
        await redis.aclose()


async def test_ingest_reads_the_state_of_400_articles_at_once(redis_cluster: str) -> None:
    # The state's reads go through ingest's other client, past the share's bound.
    redis = make_redis(RedisSettings(url=redis_cluster, cluster=True))
    prefix = f"{{burst-{uuid4().hex[:10]}}}:"
    state = IngestState(redis, prefix, ttl=60)
    try:
        await state.remember("k0", Record("c", "l", from_page=True))
        records = await asyncio.gather(*(state.record(f"k{n}") for n in range(400)))
        assert records[0] == Record("c", "l", from_page=True)
        assert records[1:] == [None] * 399
    finally:
        await redis.aclose()
