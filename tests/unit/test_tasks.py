"""Ending tasks for good: however their cancels land, nothing runs on for ever."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import pytest

from shared.tasks import cancel_until_done, to_the_end, together


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


async def _forever() -> None:
    await asyncio.Event().wait()


async def test_together_runs_beside_only_while_the_work_runs() -> None:
    beside = asyncio.Event()

    async def keeper() -> None:
        beside.set()
        await _forever()

    async def work() -> None:
        await beside.wait()

    before = asyncio.all_tasks()
    async with asyncio.timeout(5):
        await together([work()], beside=[keeper()])
    # The keeper ended with the work: nothing it started is left (the loop is shared
    # with other tests, whose tasks are not this one's to count).
    assert asyncio.all_tasks() <= before


async def test_together_raises_the_first_failure_once_the_others_have_ended() -> None:
    cancels: list[int] = []

    async def failing() -> None:
        await asyncio.sleep(0)
        raise LookupError("a source's poll broke")

    async with asyncio.timeout(5):
        with pytest.raises(LookupError):
            await together([failing(), _deaf_to_one_cancel(cancels)], beside=[_forever()])
    assert cancels == [1]  # cancelled again after it lost the first


async def test_together_cancelled_ends_all_of_its_work() -> None:
    cancels: list[int] = []
    before = asyncio.all_tasks()
    task = asyncio.ensure_future(together([_deaf_to_one_cancel(cancels)], beside=[_forever()]))
    await asyncio.sleep(0.01)
    await cancel_until_done({task})
    assert task.cancelled()
    assert cancels == [1]
    # Nothing of it runs on (the loop is shared with other tests).
    assert asyncio.all_tasks() <= before


async def _working_until_stopped_then(last_words: Coroutine[Any, Any, None]) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        await to_the_end(last_words, 60)


async def test_last_words_end_however_often_the_caller_is_cancelled() -> None:
    handed_over = asyncio.Event()
    go_on = asyncio.Event()

    async def hand_over() -> None:
        await go_on.wait()  # a round trip to Redis
        handed_over.set()

    caller = asyncio.ensure_future(_working_until_stopped_then(hand_over()))
    await asyncio.sleep(0)
    for _ in range(3):  # a service stopping cancels again every second
        caller.cancel()
        await asyncio.sleep(0)
    go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert handed_over.is_set()


async def test_an_error_of_the_last_words_is_raised_over_the_cancel() -> None:
    async def refused() -> None:
        await asyncio.sleep(0)
        raise ConnectionError("redis away")

    caller = asyncio.ensure_future(_working_until_stopped_then(refused()))
    await asyncio.sleep(0)
    caller.cancel()
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(ConnectionError):
        await caller


async def test_last_words_that_never_end_are_cut_off_at_their_bound() -> None:
    cut: list[str] = []

    async def unanswered() -> None:
        try:
            await asyncio.Event().wait()  # Redis answering nothing
        except asyncio.CancelledError:
            cut.append("cancelled")
            raise

    assert not await to_the_end(unanswered(), 0.05)
    assert cut == ["cancelled"]
