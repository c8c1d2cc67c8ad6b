"""Ending tasks for good."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any


async def cancel_until_done(tasks: Collection[asyncio.Future[Any]], every: float = 1.0) -> None:
    """Cancel `tasks` and wait until each has ended, cancelling again every `every` seconds.

    Once is not always enough on Python 3.11: a cancel that arrives as redis-py sends a
    command is lost inside its asyncio.wait_for (CPython gh-86296, fixed in 3.12), and
    the task goes on. Their outcomes are left on the tasks, never raised here.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every)
