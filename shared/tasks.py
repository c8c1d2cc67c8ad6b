"""Ending tasks for good."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection, Iterable
from typing import Any


async def cancel_until_done(tasks: Collection[asyncio.Future[Any]], every: float = 1.0) -> None:
    """Cancel `tasks` and wait until each has ended, cancelling again every `every` seconds.

    Once is not always enough on Python 3.11: a cancel that arrives as redis-py sends a
    command is lost inside its asyncio.wait_for (CPython gh-86296, fixed in 3.12), and
    the task goes on. Their outcomes are left on the tasks, never raised here. A cancel
    of the caller meanwhile is raised once they have all ended, not before: a caller
    cancelled again and again (a service stopping) would leave them running.
    """
    pending = {task for task in tasks if not task.done()}
    interrupted = False
    while pending:
        for task in pending:
            task.cancel()
        try:
            await asyncio.wait(pending, timeout=every)
        except asyncio.CancelledError:
            interrupted = True
        pending = {task for task in pending if not task.done()}
    if interrupted:
        raise asyncio.CancelledError


async def to_the_end(work: Awaitable[None], within: float) -> bool:
    """Await `work` for up to `within` seconds even when the caller is cancelled
    meanwhile, as a service stopping cancels again every second; then it is cancelled
    (and its end awaited). Whether it ended by itself; a cancel of the caller is raised
    once it has ended, and its error, if any, instead.

    For the last words of a service (its leases handed over), which one cancel more
    would otherwise cut off, and which a Redis that answers nothing must not stretch
    past the container's grace.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    task = asyncio.ensure_future(work)
    interrupted = False
    while not task.done() and loop.time() < deadline:
        try:
            await asyncio.wait({task}, timeout=deadline - loop.time())
        except asyncio.CancelledError:
            interrupted = True
    ended = task.done()
    try:
        await cancel_until_done({task})
    except asyncio.CancelledError:
        interrupted = True
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error
    if interrupted:
        raise asyncio.CancelledError
    return ended


async def together(work: Iterable[Awaitable[None]], beside: Iterable[Awaitable[None]] = ()) -> None:
    """Run `work` until all of it has ended, and `beside` (a lease keeper) for as long.

    As a task group, but when one fails or the caller is cancelled, the others are
    cancelled until they have ended: Python 3.11's task group cancels its tasks once,
    and one whose cancel is lost would run on for ever. The first failure is raised.
    """
    main = [asyncio.ensure_future(each) for each in work]
    tasks = main + [asyncio.ensure_future(each) for each in beside]
    try:
        while not all(task.done() for task in main) and not any(map(_failed, tasks)):
            running = [task for task in tasks if not task.done()]
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_until_done(tasks)
    for task in tasks:
        if _failed(task) and (error := task.exception()) is not None:
            raise error


def _failed(task: asyncio.Future[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None
