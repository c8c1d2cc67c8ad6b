"""cancel_until_done: a task ends however its cancels land, its outcome left on it."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from shared.tasks import cancel_until_done


async def _deaf_to_one_cancel(cancels: list[int]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()  # the cancel lost, as inside a redis-py command
    cancels.append(1)
    await asyncio.Event().wait()


async def test_a_task_deaf_to_one_cancel_is_cancelled_again_until_it_ends() -> None:
    cancels: list[int] = []
    task = asyncio.ensure_future(_deaf_to_one_cancel(cancels))
    await asyncio.sleep(0)
    await cancel_until_done({task}, every=0.01)
    assert task.cancelled()
    assert cancels == [1]


async def test_an_outcome_other_than_the_cancel_is_left_on_the_task() -> None:
    async def refused() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise LookupError("the write it was sending was refused") from None

    task = asyncio.ensure_future(refused())
    await asyncio.sleep(0)
    await cancel_until_done({task})
    with pytest.raises(LookupError):
        task.result()


async def test_tasks_already_ended_are_left_alone() -> None:
    async def answer() -> int:
        return 42

    task = asyncio.ensure_future(answer())
    await task
    await cancel_until_done({task})
    assert task.result() == 42
