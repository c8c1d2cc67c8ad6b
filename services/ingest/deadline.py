"""A scheduled poll's deadline, and the waits that do not count against it.

While the indexer is behind, a poll pauses (backpressure.py) for as long as that lasts:
ingest slowing down, not its source being slow. Counted against the deadline, an
indexer outage failed every source with a new article, all at once (PollTooLong and the
failing-source alert), each refetching its feed every 30 s. The deadline is kept for
the poll's task and those it starts (a ContextVar), so that a wait anywhere in the poll
can stop its clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class _Pausable:
    """A poll's timeout, stopped while any of its waits is paused: a poll reads several
    articles at once, so their pauses overlap, and the clock runs again after the last."""

    def __init__(self, timeout: asyncio.Timeout) -> None:
        self._timeout = timeout
        self._pauses = 0
        self._remaining: float | None = None  # while paused, of a deadline that was set

    def pause(self) -> None:
        self._pauses += 1
        if self._pauses > 1 or self._timeout.expired():  # expired: the poll is being cut
            return
        when = self._timeout.when()
        if when is not None:
            self._remaining = max(0.0, when - asyncio.get_running_loop().time())
            self._timeout.reschedule(None)

    def resume(self) -> None:
        self._pauses -= 1
        if self._pauses == 0 and self._remaining is not None:
            self._timeout.reschedule(asyncio.get_running_loop().time() + self._remaining)
            self._remaining = None


_poll: ContextVar[_Pausable | None] = ContextVar("poll_deadline", default=None)


@contextmanager
def pausable(timeout: asyncio.Timeout) -> Iterator[None]:
    """Within, `paused()` stops `timeout` (the entered deadline of a poll)."""
    token = _poll.set(_Pausable(timeout))
    try:
        yield
    finally:
        _poll.reset(token)


@contextmanager
def paused() -> Iterator[None]:
    """What runs within does not count against the current poll's deadline, which does
    not fire meanwhile. Outside a poll with a deadline (a backfill), nothing."""
    poll = _poll.get()
    if poll is None:
        yield
        return
    poll.pause()
    try:
        yield
    finally:
        poll.resume()
