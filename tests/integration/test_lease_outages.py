"""Lease work through a Redis that is away, and work that finds its lease lost."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

from shared.leases import Lease, LeaseLost, WorkShare, lead
from tests.conftest import Namespace
from tests.processes import free_port

pytestmark = pytest.mark.integration


async def test_renewals_outlive_a_redis_that_refuses_connections() -> None:
    # Nothing listens there: what a failing-over primary looks like to a client.
    away = Redis(port=free_port(), socket_connect_timeout=0.2)
    share = WorkShare(away, "outage:", "ratefeed", ["providers"], "a", ttl=0.3)
    tasks = [
        asyncio.ensure_future(share.join()),
        asyncio.ensure_future(share.keep()),
        asyncio.ensure_future(share.turn("providers")),
    ]
    await asyncio.sleep(share.tick * 3)
    assert not any(task.done() for task in tasks)  # none raised: all wait for Redis
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await away.aclose()


async def _lead_once(share: WorkShare, first_run: Callable[[Lease], Awaitable[None]]) -> list[int]:
    """Lead "providers" with renewals on until the work ends well; the fencing token of
    each run of the work, whose first run ends in `first_run`."""
    runs: list[int] = []

    async def work(lease: Lease) -> None:
        runs.append(lease.token)
        if len(runs) == 1:
            await first_run(lease)

    keeping = asyncio.ensure_future(share.keep())
    try:
        await asyncio.wait_for(lead(share, "providers", work), 10)
    finally:
        keeping.cancel()
        await asyncio.gather(keeping, return_exceptions=True)
    return runs


async def test_work_refused_by_the_fence_waits_for_the_lease_again(
    redis: Redis, namespace: Namespace
) -> None:
    share = WorkShare(redis, namespace.stream_prefix, "ratefeed", ["providers"], "a", ttl=1)

    async def taken_over(lease: Lease) -> None:
        # Another replica took over meanwhile and the work's next write is refused.
        await redis.delete(lease.key)
        raise LeaseLost(lease.key)

    first, second = await _lead_once(share, taken_over)
    assert second == first + 1


async def test_work_that_lost_redis_starts_again_under_its_lease(
    redis: Redis, namespace: Namespace
) -> None:
    share = WorkShare(redis, namespace.stream_prefix, "ratefeed", ["providers"], "a", ttl=1)

    async def redis_away(_: Lease) -> None:
        # What a publish raises while the primary is failing over.
        await Redis(port=free_port(), socket_connect_timeout=0.2).ping()

    runs = await _lead_once(share, redis_away)
    assert runs == [runs[0], runs[0]]  # the same tenure: the lease was never lost
