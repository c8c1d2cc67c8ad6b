"""Stopping ingest's per-source loop: asked, it ends after the poll in hand."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

from services.ingest.results import PollResult
from services.ingest.schedule import run_source_forever
from services.ingest.sources import Source
from services.ingest.worker import Ingestor


class SwallowingIngestor:
    """A poll that, like some client libraries under cancellation, swallows it."""

    def __init__(self) -> None:
        self.polling = asyncio.Event()
        self.release = asyncio.Event()
        self.polls = 0
        self.third_poll = asyncio.Event()

    def poll_deadline(self, source: Source) -> float:
        return 3600.0

    async def poll(self, source: Source, *_: Any) -> PollResult:
        self.polls += 1
        self.polling.set()
        if self.polls == 3:
            self.third_poll.set()
        with contextlib.suppress(asyncio.CancelledError):  # the library's fault, imitated
            await self.release.wait()
        return PollResult(source.name)


async def _no_wait(_: float) -> None:
    await asyncio.sleep(0)


async def test_a_source_asked_to_stop_ends_even_when_its_poll_swallowed_the_cancel() -> None:
    ingestor = SwallowingIngestor()
    stopping = asyncio.Event()
    task = asyncio.create_task(
        run_source_forever(
            cast(Ingestor, ingestor),
            Source(name="s", url="https://news.example/feed"),
            sleep=_no_wait,
            stopping=stopping,
        )
    )
    await ingestor.polling.wait()

    stopping.set()  # what the service does first on SIGTERM...
    task.cancel()  # ...then, after the grace, this: lost inside the poll
    await asyncio.wait_for(task, timeout=5)

    assert ingestor.polls == 1
    assert not task.cancelled()  # it ended because it was asked, the cancel being lost


async def test_a_source_not_asked_polls_on() -> None:
    ingestor = SwallowingIngestor()
    ingestor.release.set()
    stopping = asyncio.Event()
    task = asyncio.create_task(
        run_source_forever(
            cast(Ingestor, ingestor),
            Source(name="s", url="https://news.example/feed"),
            sleep=_no_wait,
            stopping=stopping,
        )
    )
    await asyncio.wait_for(ingestor.third_poll.wait(), timeout=5)
    stopping.set()
    await asyncio.wait_for(task, timeout=5)
    assert ingestor.polls >= 3
