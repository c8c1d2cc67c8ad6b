"""Lease work through a Redis that is away, and work that finds its lease lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from shared import leases
from shared.leases import Lease, LeaseLost, WorkShare, lead
from shared.tasks import cancel_until_done
from tests.conftest import Namespace
from tests.logs import Said
from tests.loopback import black_hole
from tests.processes import free_port
from tests.waiting import until

pytestmark = pytest.mark.integration


async def test_renewals_outlive_a_redis_that_refuses_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing listens there: what a failing-over primary looks like to a client. No
    # retries, so that every tick meets the refusal rather than waiting in the client.
    away = Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    share = WorkShare(away, "outage:", "ratefeed", ["providers"], "a", ttl=0.3)
    said = Said()
    monkeypatch.setattr(leases, "log", said)
    tasks = [
        asyncio.ensure_future(share.join()),
        asyncio.ensure_future(share.keep()),
        asyncio.ensure_future(share.turn("providers")),
    ]

    async def each_refused_twice() -> bool:
        told = said.events()
        return all(
            sum(event.startswith(start) for event in told) >= 2
            for start in ("not joined yet", "leases not renewed", "lease not taken")
        )

    await until(each_refused_twice, "joining, renewing and taking each refused twice")
    assert not any(task.done() for task in tasks)  # none raised: all wait for Redis
    await cancel_until_done(tasks)
    await away.aclose()


async def test_a_stop_with_redis_refusing_ends_with_its_leases_left_to_expire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No retries: refused at once (the services' client retries for about 4 s, and is
    # cut off at the hand-over's bound, as the next test shows).
    away = Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    share = WorkShare(away, "outage:", "ratefeed", ["providers"], "a", ttl=0.3)
    said = Said()
    monkeypatch.setattr(leases, "log", said)
    await share.hand_over()  # a warning, not an error ending the service
    await away.aclose()
    assert said.events("leases not") == ["leases not handed over, they expire: redis unreachable"]


async def test_a_stop_with_redis_answering_nothing_ends_at_the_hand_over_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(leases, "HAND_OVER_SECONDS", 0.2)
    said = Said()
    monkeypatch.setattr(leases, "log", said)
    async with black_hole() as port:
        unanswered = Redis(port=port)
        share = WorkShare(unanswered, "outage:", "ratefeed", ["providers"], "a", ttl=0.3)
        await share.hand_over()
        await unanswered.aclose()
    assert said.events("leases not") == ["leases not handed over in time, they expire"]


async def _lead_once(share: WorkShare, first_run: Callable[[Lease], Awaitable[None]]) -> list[int]:
    """Lead "providers" with renewals on until the work ends well; the fencing token of
    each run of the work, whose first run ends in `first_run`."""
    runs: list[int] = []

    async def work(lease: Lease) -> None:
        runs.append(lease.token)
        if len(runs) == 1:
            await first_run(lease)

    keeping = asyncio.ensure_future(share.keep())
    # Not wait_for: its cancel at the deadline would end a lead stuck on its work.
    leading = asyncio.ensure_future(lead(share, "providers", work))
    try:
        done, _ = await asyncio.wait({leading}, timeout=10)
    finally:
        # One cancel can be lost inside redis-py (shared/tasks.py), and the renewals
        # would then go on for ever.
        await cancel_until_done({keeping, leading}, share.tick)
    assert leading in done, "the lead never came back from its work"
    leading.result()
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


async def _refused_as_cancelled(lease: Lease) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        # The cancel arrived as a fenced write was sent and redis-py lost it: the work
        # ends in the write's refusal instead.
        raise LeaseLost(lease.key) from None


async def _deaf_to_one_cancel(_: Lease) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()  # the cancel lost inside a command
    await asyncio.Event().wait()


@pytest.mark.parametrize("cancelled", [_refused_as_cancelled, _deaf_to_one_cancel])
async def test_work_whose_cancel_is_lost_waits_for_the_lease_again(
    redis: Redis, namespace: Namespace, cancelled: Callable[[Lease], Awaitable[None]]
) -> None:
    # The renewal finds the lease taken over and cancels the work; the cancel must end
    # it however it lands, and the replica wait for the lease instead of stopping.
    share = WorkShare(redis, namespace.stream_prefix, "ratefeed", ["providers"], "a", ttl=1)

    async def taken_over(lease: Lease) -> None:
        await redis.delete(lease.key)
        await cancelled(lease)

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
