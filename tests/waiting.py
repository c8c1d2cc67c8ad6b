"""Waiting on state, never on time: every test that waits for something waits here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

# How often state is looked at again: short against what tests wait for (seconds).
POLL_SECONDS = 0.05


def wait_for(probe: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll another process's observable state until `probe` holds, or fail the test."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS * 4)


async def until(probe: Callable[[], Awaitable[bool]], what: str, within: float = 60) -> None:
    """Await `probe` again and again until it holds, or fail the test saying what."""
    try:
        async with asyncio.timeout(within):
            # State in another system (Redis, Elasticsearch, a process): no event to await.
            while not await probe():  # noqa: ASYNC110
                await asyncio.sleep(POLL_SECONDS)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")
