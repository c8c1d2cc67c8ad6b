"""Lease work through a Redis that is away, and work that finds its lease lost."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from shared.leases import LeaseLost, WorkShare, current_lease, lead
from tests.conftest import Namespace
from tests.processes import free_port

pytestmark = pytest.mark.integration


async def test_renewals_outlive_a_redis_that_refuses_connections() -> None:
    # Nothing listens there: what a failing-over primary looks like to a client.
    away = Redis(port=free_port(), socket_connect_timeout=0.2)
    share = WorkShare(away, "outage:", "ratefeed", ["providers"], "a", ttl=0.3)
    keeping = asyncio.ensure_future(share.keep())
    turning = asyncio.ensure_future(share.turn("providers"))
    await asyncio.sleep(share.tick * 3)
    assert not keeping.done()
    assert not turning.done()
    for task in (keeping, turning):
        task.cancel()
    await asyncio.gather(keeping, turning, return_exceptions=True)
    await away.aclose()


async def test_work_refused_by_the_fence_waits_for_the_lease_again(
    redis: Redis, namespace: Namespace
) -> None:
    share = WorkShare(redis, namespace.stream_prefix, "ratefeed", ["providers"], "a", ttl=1)
    runs: list[int] = []

    async def work() -> None:
        lease = current_lease.get()
        assert lease is not None
        runs.append(lease.token)
        if len(runs) == 1:
            # Another replica took over meanwhile and the work's next write is refused.
            await redis.delete(lease.key)
            raise LeaseLost(lease.key)

    keeping = asyncio.ensure_future(share.keep())
    await asyncio.wait_for(lead(share, "providers", work), 10)
    keeping.cancel()
    await asyncio.gather(keeping, return_exceptions=True)
    first, second = runs
    assert second == first + 1


async def test_work_that_lost_redis_starts_again_under_its_lease(
    redis: Redis, namespace: Namespace
) -> None:
    share = WorkShare(redis, namespace.stream_prefix, "ratefeed", ["providers"], "a", ttl=1)
    runs: list[int] = []

    async def work() -> None:
        lease = current_lease.get()
        assert lease is not None
        runs.append(lease.token)
        if len(runs) == 1:
            # What a publish raises while the primary is failing over.
            await Redis(port=free_port(), socket_connect_timeout=0.2).ping()

    keeping = asyncio.ensure_future(share.keep())
    await asyncio.wait_for(lead(share, "providers", work), 10)
    keeping.cancel()
    await asyncio.gather(keeping, return_exceptions=True)
    assert runs == [runs[0], runs[0]]  # the same tenure: the lease was never lost
