"""The parse sandbox shares its workers fairly between sources: one source of slow
pages holds one worker, and whoever waits behind it gets the next."""

from __future__ import annotations

import asyncio
import time

from shared.sandbox import Sandbox, SandboxLimits, Turns, parses_of


async def _take(turns: Turns, share: str, order: list[str], done: asyncio.Event) -> None:
    async with turns.turn(share):
        order.append(share)
        await done.wait()


async def _settle() -> None:
    """Every task ready to run gets to its next wait."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_free_place_goes_to_the_waiting_share_holding_the_fewest() -> None:
    turns = Turns(1)
    order: list[str] = []
    releases = [asyncio.Event() for _ in range(4)]
    # One slow source asks first for three, a second source for one after them.
    tasks = [
        asyncio.create_task(_take(turns, share, order, release))
        for share, release in zip(["slow", "slow", "slow", "quick"], releases, strict=True)
    ]
    await _settle()
    assert order == ["slow"]
    releases[0].set()
    await _settle()
    assert order == ["slow", "quick"]  # not behind the slow source's queue
    releases[3].set()
    releases[1].set()
    releases[2].set()
    await asyncio.gather(*tasks)
    assert order == ["slow", "quick", "slow", "slow"]


async def test_places_freed_together_go_to_different_shares() -> None:
    # Counted only once the waiter ran, both went to the share served longest ago.
    turns = Turns(2)
    order: list[str] = []
    first, waiting = asyncio.Event(), asyncio.Event()
    holders = [asyncio.create_task(_take(turns, share, order, first)) for share in "ab"]
    await _settle()
    waiters = [asyncio.create_task(_take(turns, share, order, waiting)) for share in "aaab"]
    await _settle()
    first.set()  # both holders leave in the same turn of the loop
    await asyncio.gather(*holders)
    await _settle()
    assert order == ["a", "b", "a", "b"]
    waiting.set()
    await asyncio.gather(*waiters)


async def test_a_cancelled_waiter_loses_no_place() -> None:
    turns = Turns(1)
    order: list[str] = []
    release = asyncio.Event()
    async with turns.turn("a"):
        tasks = [asyncio.create_task(_take(turns, share, order, release)) for share in "bcd"]
        given_up, granted_then_cancelled, _last = tasks
        await _settle()
        given_up.cancel()
        await _settle()
    # The place has just gone to c, which is cancelled before it runs: it passes it on.
    granted_then_cancelled.cancel()
    release.set()
    async with asyncio.timeout(5):
        await asyncio.gather(*tasks, return_exceptions=True)
    assert order == ["d"]
    assert given_up.cancelled()
    assert granted_then_cancelled.cancelled()
    async with asyncio.timeout(1), turns.turn("e"):  # and the place is free again
        pass


def _nap(seconds: float) -> float:
    time.sleep(seconds)
    return time.monotonic()


async def test_the_sandbox_takes_turns_between_sources() -> None:
    sandbox = Sandbox(SandboxLimits(workers=1))
    try:

        async def parse(share: str) -> tuple[float, str]:
            with parses_of(share):
                return await sandbox.run(_nap, 0.2), share

        slow = [asyncio.create_task(parse("slow")) for _ in range(3)]
        await asyncio.sleep(0)
        quick = asyncio.create_task(parse("quick"))
        finished = sorted(await asyncio.gather(*slow, quick))
        assert [share for _, share in finished] == ["slow", "quick", "slow", "slow"]
    finally:
        sandbox.close()
