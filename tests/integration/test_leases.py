"""Leases on the real Redis: one holder, fencing of a late holder's writes, fair shares."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from redis.asyncio import Connection, ConnectionPool, Redis

from services.ingest.state import IngestState, Record
from shared.leases import LeaseLost, WorkShare
from tests.conftest import Namespace
from tests.streams import entries

pytestmark = pytest.mark.integration


async def test_a_holder_that_lost_its_lease_cannot_write_on_it(
    redis: Redis, namespace: Namespace
) -> None:
    old = WorkShare(redis, namespace.stream_prefix, "ingest", ["s"], "old", ttl=1)
    new = WorkShare(redis, namespace.stream_prefix, "ingest", ["s"], "new", ttl=1)
    state = IngestState(redis, namespace.stream_prefix, ttl=60)
    stale = await old.turn("s")
    await state.under(stale).remember("k", Record("old-content", "lead"))

    # The old holder stalls past its lease; the new one takes the next token.
    await redis.delete(stale.key)
    fresh = await new.turn("s")
    assert fresh.token == stale.token + 1
    await state.under(fresh).remember("k", Record("new-content", "lead"))

    with pytest.raises(LeaseLost):
        await state.under(stale).remember("k", Record("old-content", "lead"))
    stream = f"{namespace.stream_prefix}articles"
    with pytest.raises(LeaseLost):  # neither the entry nor the memory of it
        await state.under(stale).publish(
            ("XADD", stream, "*", "f", "v"), "k", Record("old", "lead")
        )
    assert await redis.xlen(stream) == 0
    record = await state.record("k")
    assert record is not None
    assert record.content == "new-content"


async def test_each_replica_takes_its_fair_share_and_gives_back_the_rest(
    redis: Redis, namespace: Namespace
) -> None:
    items = [f"s{n}" for n in range(10)]
    first = WorkShare(redis, namespace.stream_prefix, "ingest", items, "first", ttl=30)
    await first.beat()
    for item in items:
        await first.turn(item)
        await first.done(item, 60)
    assert first.held == sorted(items)

    second = WorkShare(redis, namespace.stream_prefix, "ingest", items, "second", ttl=30)
    await second.beat()
    await first.beat()  # sees two replicas: keeps 5, hands 5 over
    assert len(first.held) == 5
    for item in set(items) - set(first.held):
        assert await second._try_acquire(item) is not None
    assert len(second.held) == 5

    await second.release_all()
    await first.beat()
    assert await first._try_acquire(second_item := sorted(set(items) - set(first.held))[0])
    assert second_item in first.held


class CountingConnection(Connection):
    """Counts what is written to Redis in one go: a round trip each."""

    sends = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sends += 1
        await super().send_packed_command(command, check_health)


async def test_thousands_of_leases_are_renewed_and_handed_over_in_a_few_round_trips(
    redis: Redis, namespace: Namespace
) -> None:
    items = [f"s{n}" for n in range(2000)]
    counted = Redis(
        connection_pool=ConnectionPool.from_url(
            os.environ["REDIS_URL"], connection_class=CountingConnection
        )
    )
    first = WorkShare(counted, namespace.stream_prefix, "ingest", items, "first", ttl=30)
    await first.beat()
    for item in items:
        await first._try_acquire(item)
    assert len(first.held) == len(items)
    holders = [f"{namespace.stream_prefix}lease:holder:ingest:{item}" for item in items]
    await redis.pexpire(holders[0], 1000)  # nearly expired: the next beat renews it

    CountingConnection.sends = 0
    await first.beat()
    assert await redis.pttl(holders[0]) > 20_000
    await first.release_all()
    # One round trip per lease took a SIGTERMed replica past its grace period under
    # load; together they take a handful (the beat's, the renewals', the hand-over's).
    assert CountingConnection.sends <= 5
    assert await redis.exists(*holders) == 0
    await counted.aclose()

    second = WorkShare(redis, namespace.stream_prefix, "ingest", items, "second", ttl=30)
    await second.beat()  # alone now: the first left the members too
    assert second.share == len(items)
    assert await second._try_acquire(items[0]) is not None


async def test_with_audit_every_accepted_write_logs_its_token_and_a_refused_one_none(
    redis: Redis, namespace: Namespace
) -> None:
    old = WorkShare(redis, namespace.stream_prefix, "ingest", ["s"], "old", ttl=1, audit=True)
    new = WorkShare(redis, namespace.stream_prefix, "ingest", ["s"], "new", ttl=1, audit=True)
    state = IngestState(redis, namespace.stream_prefix, ttl=60)
    stale = await old.turn("s")
    await state.under(stale).remember("k", Record("old-content", "lead"))
    await redis.delete(stale.key)
    fresh = await new.turn("s")
    await state.under(fresh).remember("k", Record("new-content", "lead"))
    with pytest.raises(LeaseLost):
        await state.under(stale).remember("k", Record("late", "lead"))

    audit = await entries(redis, f"{namespace.stream_prefix}lease:audit:ingest:s")
    assert [int(fields[b"token"]) for _, fields in audit] == [stale.token, fresh.token]
    assert all(fields[b"keys"].endswith(b"ingest:seen:k") for _, fields in audit)


@pytest.mark.parametrize("due", [b"garbage", b"1.7e12", b"\xff", b"99999999999999"])
async def test_a_due_time_caravan_did_not_write_makes_the_item_due_now(
    redis: Redis, namespace: Namespace, due: bytes
) -> None:
    # Not digits, or centuries ahead: before, the first crash-looped the service and the
    # last left its source unpolled for ever.
    share = WorkShare(redis, namespace.stream_prefix, "ingest", ["s"], "only", ttl=30)
    await redis.set(f"{namespace.stream_prefix}lease:due:ingest:s", due)
    async with asyncio.timeout(10):
        lease = await share.turn("s")
    assert lease.token >= 1


async def test_a_due_key_of_another_type_makes_the_item_due_now_and_is_replaced(
    redis: Redis, namespace: Namespace
) -> None:
    share = WorkShare(redis, namespace.stream_prefix, "ingest", ["s"], "only", ttl=30)
    due = f"{namespace.stream_prefix}lease:due:ingest:s"
    await redis.hset(due, "when", "tomorrow")
    async with asyncio.timeout(10):
        await share.turn("s")
    await share.done("s", 60)
    assert int(await redis.get(due) or 0) > 0


@pytest.mark.parametrize("kind", ["hash", "string without expiry", "string for ten years"])
async def test_a_holder_key_caravan_did_not_write_is_taken_over(
    redis: Redis, namespace: Namespace, kind: str
) -> None:
    # Set by hand: before, the item waited for it to expire, which it never (or not for
    # ten years) does.
    holder = f"{namespace.stream_prefix}lease:holder:ingest:s"
    if kind == "hash":
        await redis.hset(holder, "who", "nobody")
    elif kind == "string for ten years":
        await redis.set(holder, "nobody:7", px=315_360_000_000)
    else:
        await redis.set(holder, "nobody:7")
    share = WorkShare(redis, namespace.stream_prefix, "ingest", ["s"], "only", ttl=30)
    async with asyncio.timeout(10):
        lease = await share.turn("s")
    assert await lease.held()
    assert 0 < await redis.pttl(holder) <= 30_000
    live = WorkShare(redis, namespace.stream_prefix, "ingest", ["s"], "other", ttl=30)
    assert await live._try_acquire("s") is None  # a lease Caravan wrote is respected


@pytest.mark.parametrize("counter", [10**14, 2**62, 0, -1])
async def test_a_fence_counter_past_what_lua_writes_whole_restarts_and_is_written_whole(
    redis: Redis, namespace: Namespace, counter: int
) -> None:
    # From 10**14 the holder was written `owner:1e+14`: the holder's own value never
    # matched it again, so no write under the lease ever went through. Below 1, the
    # token 0 read as no lease, and the holder it wrote stalled the item a lease long.
    fence = f"{namespace.stream_prefix}lease:fence:ingest:s"
    await redis.set(fence, counter - 1)
    share = WorkShare(redis, namespace.stream_prefix, "ingest", ["s"], "only", ttl=30)
    async with asyncio.timeout(10):
        lease = await share.turn("s")
    assert await lease.held()
    await lease.write([("SET", f"{namespace.stream_prefix}fenced", "1")])
    assert await redis.get(f"{namespace.stream_prefix}fenced") == b"1"


@pytest.mark.parametrize("counter", ["garbage", "hash"])
async def test_a_fence_counter_caravan_did_not_write_restarts_past_every_token(
    redis: Redis, namespace: Namespace, counter: str
) -> None:
    fence = f"{namespace.stream_prefix}lease:fence:ingest:s"
    first = WorkShare(redis, namespace.stream_prefix, "ingest", ["s"], "first", ttl=30)
    earlier = await first.turn("s")
    await first.release_all()
    await redis.delete(fence)
    if counter == "hash":
        await redis.hset(fence, "n", "1")
    else:
        await redis.set(fence, counter)

    # Before, INCR's refusal read as Redis away: the item was never worked on again.
    second = WorkShare(redis, namespace.stream_prefix, "ingest", ["s"], "second", ttl=30)
    async with asyncio.timeout(10):
        lease = await second.turn("s")
    assert lease.token > earlier.token
    assert await lease.held()
    await second.release_all()
    assert (await second.turn("s")).token == lease.token + 1


async def test_a_holder_turned_into_another_type_is_lost_not_redis_away(
    redis: Redis, namespace: Namespace
) -> None:
    share = WorkShare(redis, namespace.stream_prefix, "ingest", ["s", "t"], "only", ttl=30)
    await share.beat()
    lease = await share.turn("s")
    other = await share.turn("t")
    await redis.delete(lease.key)
    await redis.hset(lease.key, "who", "nobody")
    state = IngestState(redis, namespace.stream_prefix, ttl=60)

    assert not await lease.held()
    with pytest.raises(LeaseLost):
        await state.under(lease).remember("k", Record("content", "lead"))
    await share.beat()  # the renewal finds it lost; the other lease is renewed
    assert share.held == ["t"]
    assert await other.held()
    async with asyncio.timeout(10):
        retaken = await share.turn("s")
    assert retaken.token > lease.token


async def test_a_members_key_of_another_type_is_replaced_so_replicas_can_join(
    redis: Redis, namespace: Namespace
) -> None:
    members = f"{namespace.stream_prefix}lease:members:ingest"
    await redis.set(members, "garbage")
    first = WorkShare(redis, namespace.stream_prefix, "ingest", ["s", "t"], "first", ttl=30)
    second = WorkShare(redis, namespace.stream_prefix, "ingest", ["s", "t"], "second", ttl=30)
    async with asyncio.timeout(10):
        await first.join()
        await second.join()
    assert second.share == 1
    assert await redis.zcard(members) == 2


async def test_a_member_to_expire_in_years_is_no_live_replica(
    redis: Redis, namespace: Namespace
) -> None:
    # Restored, set by hand or from a clock far ahead: it counted as live for good, and
    # the only replica polled half the sources.
    share = WorkShare(redis, namespace.stream_prefix, "ingest", ["a", "b"], "only", ttl=30)
    await share.join()
    await redis.zadd(share._members, {"ghost": 1e308})
    await share.beat()
    assert share.share == 2
    assert await redis.zrange(share._members, 0, -1) == [b"only"]


async def test_a_replica_whose_clock_is_behind_stays_a_member(
    redis: Redis, namespace: Namespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Expiries were written on each replica's clock: one two minutes behind was dropped
    # at every beat of the other, which then took every source while it sat idle.
    behind = WorkShare(redis, namespace.stream_prefix, "ingest", ["a", "b"], "behind", ttl=30)
    ahead = WorkShare(redis, namespace.stream_prefix, "ingest", ["a", "b"], "ahead", ttl=30)
    now = time.time
    await ahead.join()
    with monkeypatch.context() as clock:
        clock.setattr(time, "time", lambda: now() - 120)
        await behind.join()
    await ahead.beat()
    assert (ahead.share, behind.share) == (1, 1)
    assert sorted(await redis.zrange(ahead._members, 0, -1)) == [b"ahead", b"behind"]


async def test_an_item_whose_turn_comes_during_a_handover_is_kept(
    redis: Redis, namespace: Namespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The excess was counted once, then handed over an item at a time: an item whose
    # turn came while an earlier one was handed over went too, busy, and the next
    # holder polled it while this replica still did (a cluster test caught it).
    share = WorkShare(redis, namespace.stream_prefix, "ingest", ["a", "b", "c"], "one", ttl=30)
    await share.join()
    for item in ("a", "b", "c"):
        assert await share._try_acquire(item) is not None
    for other in ("two", "three"):  # two more replicas: a share of one, an excess of two
        await redis.zadd(share._members, {other: (time.time() + 30) * 1000})
    hand_over = share._give_back

    async def while_b_turns(item: str) -> None:
        await hand_over(item)
        if item == "a":
            assert await share.turn("b") is not None  # due at once: busy from here

    monkeypatch.setattr(share, "_give_back", while_b_turns)
    await share.beat()
    assert sorted(share._held) == ["b", "c"]  # b kept, busy; c is the next beat's
    await share.done("b", 60)
    await share.beat()
    assert len(share._held) == 1  # its share, once nothing is busy


async def test_a_replica_on_a_shorter_lease_respects_a_longer_one(
    redis: Redis, namespace: Namespace
) -> None:
    # A rollout onto another lease length: the replica on 30 s took the 600 s one's live
    # lease for a foreign key, and dropped it from the members.
    long = WorkShare(redis, namespace.stream_prefix, "ingest", ["s"], "long", ttl=600)
    short = WorkShare(redis, namespace.stream_prefix, "ingest", ["s"], "short", ttl=30)
    await long.join()
    assert await long._try_acquire("s") is not None
    await short.join()
    assert await short._try_acquire("s") is None
    await short.beat()
    assert sorted(await redis.zrange(short._members, 0, -1)) == [b"long", b"short"]
