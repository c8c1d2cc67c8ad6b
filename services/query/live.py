"""Live ticker: quote events from the quotes stream, fanned out as Server-Sent Events.

One reader per process follows the stream with XREAD (no consumer group: every
API process shows every quote and none of them owns or acknowledges entries)
and hands each new quote to every open page through a small queue. A page that
cannot keep up loses updates rather than holding the reader back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from decimal import Decimal

import structlog
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.query.quotes import ticker_line
from shared.backoff import Backoff
from shared.consumer import TailReader
from shared.events import QuoteEvent
from shared.streams import DATA_FIELD

log = structlog.get_logger(__name__)
QUEUE_SIZE = 32
KEEPALIVE_SECONDS = 15.0


def ticker_update(data: bytes) -> dict[str, str] | None:
    """The ticker update carried by one stream entry's `__data__`.

    None when it is not a quote, or not the primary provider's: the other
    providers' quotes are for history and cross-checks, and would make the
    ticker jump between sources.
    """
    try:
        event = QuoteEvent.model_validate_json(data)
    except ValidationError:
        return None
    if not event.primary:
        return None
    change = Decimal(event.change_pct) if event.change_pct is not None else None
    return {"base": event.base, "quote": event.quote, "as_of": event.as_of.isoformat(),
            "ticker": ticker_line(event.base, event.quote, event.rate, change)}


def sse_message(event: str, data: dict[str, str]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class QuoteBroadcaster:
    def __init__(self, redis: Redis, stream: str, max_subscribers: int,
                 block_ms: int = 5000) -> None:
        self._redis = redis
        self._max_subscribers = max_subscribers
        self._stream = stream
        self._block_ms = block_ms
        self._subscribers: set[asyncio.Queue[dict[str, str]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._backoff = Backoff(base=0.5, cap=10.0)

    def subscribe(self) -> AsyncIterator[str] | None:
        """SSE text for one page, or None when the process already serves its cap of pages.

        The place is taken here, before the response starts, so that concurrent
        requests cannot all pass a check and then exceed the cap together.
        """
        if len(self._subscribers) >= self._max_subscribers:
            return None
        queue: asyncio.Queue[dict[str, str]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._follow())
        return self._updates(queue)

    async def _updates(self, queue: asyncio.Queue[dict[str, str]]) -> AsyncIterator[str]:
        """Quote updates, and a comment now and then to keep the connection open."""
        try:
            yield ": connected\n\n"
            while True:
                try:
                    update = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keepalive\n\n"
                else:
                    yield sse_message("quote", update)
        finally:
            self._subscribers.discard(queue)

    async def _follow(self) -> None:
        # Started by the first page and kept on: a reader that stopped with its last page
        # would miss quotes that arrive while the next page is being opened.
        tail = TailReader(self._redis, self._stream, block_ms=self._block_ms)
        failures = 0
        while True:
            try:
                entries = await tail.read()
                failures = 0
            except (RedisError, OSError) as exc:
                failures += 1
                log.warning("quotes stream unreadable", error=str(exc))
                await asyncio.sleep(self._backoff.delay(failures))
                continue
            for entry in entries:
                update = ticker_update(entry.fields.get(DATA_FIELD, b""))
                if update is not None:
                    self._publish(update)

    def _publish(self, update: dict[str, str]) -> None:
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(update)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
