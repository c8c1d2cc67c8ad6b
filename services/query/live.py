"""Live ticker: quote events from the quotes stream, fanned out as Server-Sent Events.

One reader per process follows the stream with XREAD (no consumer group: every
API process shows every quote and none of them owns or acknowledges entries)
and hands each new quote to every open page through a small queue. A page that
cannot keep up loses updates rather than holding the reader back.

Each open page holds a place: so many per process, fewer per client. The place is
given back however the stream ends: the server reports the client gone, a write
finds it gone, or the stream reaches its lifetime, after which the page's
EventSource reconnects by itself. The lifetime is what frees a place whose closed
connection nobody reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from decimal import Decimal
from types import TracebackType
from typing import Literal

import structlog
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter as MetricCounter
from prometheus_client import Gauge
from pydantic import ValidationError
from redis.asyncio import Redis
from starlette.types import Receive, Scope, Send

from services.query.limits import Client, Places, Refusal
from services.query.quotes import ticker_line
from shared.backoff import Backoff
from shared.clients import REDIS_AWAY, redis_trouble
from shared.consumer import TailReader
from shared.events import QuoteEvent
from shared.index import CURRENCIES
from shared.settings import LONGEST_BLOCK_MS
from shared.streams import DATA_FIELD
from shared.tasks import cancel_until_done

log = structlog.get_logger(__name__)
QUEUE_SIZE = 32
KEEPALIVE_SECONDS = 15.0
# How long a page waits before it reconnects after its stream ended (the `retry:` hint).
RECONNECT_MS = 3000
OPENING = f"retry: {RECONNECT_MS}\n: connected\n\n"
KEEPALIVE = ": keepalive\n\n"
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]

# Which cap refused a stream (Places): the client's own, or the process's.
REFUSALS: dict[Refusal, tuple[int, str]] = {
    "client": (429, "too many live ticker connections from your address; close one or retry later"),
    "process": (503, "too many live ticker connections on this server; retry shortly"),
}
RETRY_AFTER_SECONDS = 30

OPEN_STREAMS = Gauge("caravan_query_live_streams", "Live ticker streams open in this process.")
REFUSED = MetricCounter(
    "caravan_query_live_refused_total",
    "Live ticker streams refused, by the cap that refused them.",
    ["cap"],
)
SKIPPED = MetricCounter(
    "caravan_query_live_skipped_total",
    "Quotes stream entries the live ticker could not read, by why.",
    ["reason"],
)


# A quote event is well under a kilobyte. A far larger entry is not one, and is not
# parsed: pydantic turns a refused document into Python objects for its error, and one
# of 50 MB held every search of the process for 7 s and took 5 GB.
MAX_QUOTE_BYTES = 16 << 10
# Entries a read takes at once: a day's quotes come in a few dozen, and each read of
# oversized entries is held in memory whole.
READ_COUNT = 16


class Unreadable(ValueError):
    """A quotes stream entry that is not a quote event this version reads (another
    schema version among them, in a mixed rollout): the ticker stays where it was."""

    def __init__(self, reason: Literal["oversized", "invalid"], detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def ticker_update(data: bytes) -> dict[str, str] | None:
    """The ticker update carried by one stream entry's `__data__`.

    None when it is not the primary provider's (the other providers' quotes are for
    history and cross-checks, and would make the ticker jump between sources), or not
    of a currency the ticker shows.
    Unreadable when it is not a quote (or longer than any).
    """
    if len(data) > MAX_QUOTE_BYTES:
        raise Unreadable("oversized", f"{len(data)} bytes, past {MAX_QUOTE_BYTES}")
    try:
        event = QuoteEvent.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise Unreadable("invalid", f"{where}: {first['msg']}"[:200]) from None
    if not event.primary or event.base not in CURRENCIES:
        return None
    change = Decimal(event.change_pct) if event.change_pct is not None else None
    return {
        "base": event.base,
        "quote": event.quote,
        "as_of": event.as_of.isoformat(),
        "ticker": ticker_line(event.base, event.quote, event.rate, change),
    }


def sse_message(event: str, data: dict[str, str]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class Subscription:
    """One page's place and its queue of updates; closing it gives the place back, once."""

    def __init__(self, queue: asyncio.Queue[dict[str, str]], release: Callable[[], None]) -> None:
        self.queue = queue
        self._release: Callable[[], None] | None = release

    async def next_message(self) -> str:
        """The next quote update as SSE text, or a comment to keep the connection open."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel that
        # arrives as the update does, and the stream would outlive its end.
        try:
            async with asyncio.timeout(KEEPALIVE_SECONDS):
                update = await self.queue.get()
        except TimeoutError:
            return KEEPALIVE
        return sse_message("quote", update)

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class QuoteBroadcaster:
    def __init__(
        self,
        redis: Redis,
        stream: str,
        places: Places,
        lifetime: float,
        block_ms: int = LONGEST_BLOCK_MS,
    ) -> None:
        self._redis = redis
        self._places = places
        self.lifetime = lifetime
        self._stream = stream
        self._block_ms = block_ms
        self._subscribers: set[asyncio.Queue[dict[str, str]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._backoff = Backoff(first=0.5, cap=10.0)
        # The newest day each currency's quotes have reached, as ISO dates.
        self._days: dict[str, str] = {}

    def subscribe(self, client: Client) -> Subscription | Refusal:
        """A place for one of `client`'s pages, or the cap that refused it.

        Taken without an await in between, so that concurrent requests cannot all
        pass a check and then exceed a cap together.
        """
        refusal = self._places.take(client)
        if refusal is not None:
            REFUSED.labels(refusal).inc()
            return refusal
        queue: asyncio.Queue[dict[str, str]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        OPEN_STREAMS.inc()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._follow())

        def release() -> None:
            self._subscribers.discard(queue)
            self._places.give_back(client)
            OPEN_STREAMS.dec()

        return Subscription(queue, release)

    async def _follow(self) -> None:
        # Started by the first page and kept on: a reader that stopped with its last page
        # would miss quotes that arrive while the next page is being opened.
        tail = TailReader(self._redis, self._stream, block_ms=self._block_ms, count=READ_COUNT)
        failures = 0
        while True:
            try:
                entries = await tail.read()
                failures = 0
            except REDIS_AWAY as exc:
                failures += 1
                log.warning(f"quotes stream unreadable: {redis_trouble(exc)}", error=str(exc))
                await asyncio.sleep(self._backoff.delay(failures))
                continue
            for entry in entries:
                try:
                    update = ticker_update(entry.fields.get(DATA_FIELD, b""))
                except Unreadable as exc:
                    SKIPPED.labels(exc.reason).inc()
                    log.warning(
                        "quote not shown on the ticker",
                        entry=entry.entry_id,
                        reason=exc.reason,
                        error=str(exc),
                    )
                    continue
                if update is not None and update["as_of"] >= self._days.get(update["base"], ""):
                    # An older day's quote (a backfill, a catch-up) is not the current rate.
                    self._days[update["base"]] = update["as_of"]
                    self._publish(update)

    def _publish(self, update: dict[str, str]) -> None:
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(update)

    async def close(self) -> None:
        if self._task is not None:
            await cancel_until_done({self._task})


class LiveStream(Response):
    """One page's live ticker, as the response to its request.

    The place is taken when the response starts and given back when it ends,
    whatever ends it, so no path between the two can keep it.
    """

    def __init__(self, broadcaster: QuoteBroadcaster, client: Client) -> None:
        # Not Response.__init__: that is for a body known before it is sent.
        self.broadcaster = broadcaster
        self.client = client
        self.background = None  # FastAPI hangs a request's background tasks here: none

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        subscription = self.broadcaster.subscribe(self.client)
        if isinstance(subscription, str):
            status, detail = REFUSALS[subscription]
            refusal = JSONResponse(
                {"detail": detail}, status, {"Retry-After": str(RETRY_AFTER_SECONDS)}
            )
            await refusal(scope, receive, send)
            return
        # ASGI 2.4 servers report a client gone by raising OSError from `send`.
        with contextlib.suppress(OSError):
            with subscription:
                await send(
                    {"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS}
                )
                async with asyncio.TaskGroup() as group:
                    writer = group.create_task(
                        _write(subscription, send, self.broadcaster.lifetime)
                    )
                    watcher = group.create_task(_until_gone(receive))
                    # Whichever ends first ends the other.
                    writer.add_done_callback(lambda _: watcher.cancel())
                    watcher.add_done_callback(lambda _: writer.cancel())
            # The end of the stream, its place given back: the page reconnects after the
            # `retry:` hint. Bounded, as a client that stopped reading would hold it up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(KEEPALIVE_SECONDS):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _write(subscription: Subscription, send: Send, lifetime: float) -> None:
    """The stream's text for `lifetime` seconds, or until a write finds the client gone."""
    with contextlib.suppress(TimeoutError, OSError):
        async with asyncio.timeout(lifetime):
            text = OPENING
            while True:
                await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
                text = await subscription.next_message()


async def _until_gone(receive: Receive) -> None:
    """Returns when the server reports the client gone (its connection closed)."""
    while (await receive())["type"] != "http.disconnect":
        pass
