"""What one poll of a source leaves in the metrics the failing-source alert reads, and
what a poll cut at its deadline leaves behind."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from prometheus_client import REGISTRY

from services.ingest.backpressure import Backpressure
from services.ingest.schedule import poll_safely, run_source_forever
from services.ingest.sources import Source
from services.ingest.state import IngestState
from services.ingest.worker import ArticleStream, Ingestor
from shared.backoff import POLL_RETRY_FIRST
from shared.fetcher import Fetched, PoliteFetcher, Validators
from shared.leases import LeaseLost, WorkShare
from shared.sandbox import Sandbox


class _Taken:
    """An ingestor whose poll finds the source's lease taken by another replica."""

    def poll_deadline(self, source: Source) -> float:
        return 3600.0

    async def poll(self, source: Source) -> None:
        raise LeaseLost(f"lease:{source.name}")


def _sample(name: str, labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_a_lease_lost_mid_poll_is_no_error_of_the_source() -> None:
    # The replica that took the source over succeeds; this one's error time would
    # have outlived that success in the alert, which takes the latest of each.
    source = Source(name="taken-over", url="https://invented.example/feed")
    result = await poll_safely(cast("Ingestor", _Taken()), source)
    assert result.error is not None
    assert _sample("caravan_ingest_last_error_timestamp_seconds", {"source": source.name}) is None
    labels = {"source": source.name, "outcome": "lease_lost"}
    assert _sample("caravan_ingest_polls_total", labels) == 1


FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Invented</title>
<item><title>First</title><link>http://site.test/a1</link><description>One.</description></item>
<item><title>Second</title><link>http://site.test/a2</link><description>Two.</description></item>
</channel></rss>"""
PAGE = b"<html><body><article><h1>First</h1><p>" + b"Some words. " * 60 + b"</p></article>"


class _SlowHost:
    """The feed and its first page at once; the second page never (each request within
    the fetcher's own bounds, the poll's whole not)."""

    deadline = 0.01  # a fetch's, scaled down

    async def fetch(self, url: str, validators: Validators | None = None) -> Fetched:
        if url == "http://site.test/a2":
            await asyncio.Event().wait()
        body, kind = (FEED, "application/rss+xml") if url.endswith("feed") else (PAGE, "text/html")
        return Fetched(url, body, kind)


class _Memory:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.validators_kept: list[str] = []

    def under(self, _: object) -> _Memory:
        return self

    async def validators(self, *_: object) -> Validators:
        return Validators()

    async def remember_validators(self, url: str, *_: object) -> None:
        self.validators_kept.append(url)

    async def record(self, _: str) -> None:
        return None

    async def publish(self, _: object, key: str, *__: object) -> None:
        self.published.append(key)


class _InProcess:
    async def run(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


class _OneTurn:
    """A share that grants the source's lease once and notes when it is next due."""

    def __init__(self, stopping: asyncio.Event) -> None:
        self.stopping = stopping
        self.next_in: list[float] = []

    async def turn(self, *_: object) -> object:
        return object()

    async def done(self, _: str, next_in: float) -> None:
        self.next_in.append(next_in)  # and the source no longer busy: its lease free
        self.stopping.set()


async def test_a_poll_past_its_deadline_keeps_what_it_published_and_is_tried_again() -> None:
    # Hosts answering each request within its bounds held one poll (and its source's
    # lease) for hours. A scheduled poll now gets its source's interval.
    state = _Memory()
    ingestor = Ingestor(
        ArticleStream("caravan:articles"),
        cast("PoliteFetcher", _SlowHost()),
        cast("IngestState", state),
        cast("Sandbox", _InProcess()),
    )
    source = Source(name="slow-host", url="http://site.test/feed", interval=0.2)
    stopping = asyncio.Event()
    share = _OneTurn(stopping)
    await asyncio.wait_for(
        run_source_forever(ingestor, source, share=cast("WorkShare", share), stopping=stopping),
        timeout=30,
    )
    assert len(state.published) == 1  # the first article, published before the cut
    assert state.validators_kept == []  # the feed is read whole again next time
    [retry_in] = share.next_in
    # Due again as a failed poll is: from 30 s on, never later than its interval.
    assert source.interval / 2 <= retry_in <= min(POLL_RETRY_FIRST, source.interval)
    labels = {"source": source.name, "error": "PollTooLong"}
    assert _sample("caravan_ingest_poll_errors_total", labels) == 1


class _Site:
    """The feed and its pages at once, but `hangs`, never."""

    def __init__(self, deadline: float, hangs: str | None = None) -> None:
        self.deadline = deadline  # a fetch's, scaled down
        self._hangs = hangs

    async def fetch(self, url: str, validators: Validators | None = None) -> Fetched:
        if url == self._hangs:
            await asyncio.Event().wait()
        body, kind = (FEED, "application/rss+xml") if url.endswith("feed") else (PAGE, "text/html")
        return Fetched(url, body, kind)


class _IndexerBehind:
    """The indexer behind for `seconds` at each article's wait; with `overlapping`, the
    first article's wait ends as soon as the second's begins."""

    def __init__(self, seconds: float, *, overlapping: bool = False) -> None:
        self._seconds = seconds
        self._overlapping = overlapping
        self._waits = 0
        self._second = asyncio.Event()

    async def wait(self) -> None:
        self._waits += 1
        if self._overlapping and self._waits == 1:
            await self._second.wait()
            return
        self._second.set()
        await asyncio.sleep(self._seconds)


def _ingestor(
    fetcher: _Site, state: _Memory, indexer: _IndexerBehind, *, at_once: int = 1
) -> Ingestor:
    return Ingestor(
        ArticleStream("caravan:articles"),
        cast("PoliteFetcher", fetcher),
        cast("IngestState", state),
        cast("Sandbox", _InProcess()),
        cast("Backpressure", indexer),
        articles_in_flight=at_once,
    )


async def test_a_poll_paused_for_the_indexer_longer_than_its_deadline_is_not_cut() -> None:
    # Counted against the deadline, an indexer outage failed every source with a new
    # article (PollTooLong, the failing-source alert), each refetching its feed every
    # 30 s. Waiting for the indexer is ingest pausing, as before there was a deadline.
    # Two articles wait at once, the deadline running again only after the last.
    state = _Memory()
    ingestor = _ingestor(_Site(0.5), state, _IndexerBehind(1.0, overlapping=True), at_once=2)
    source = Source(name="indexer-behind", url="http://site.test/feed", interval=0.1)
    result = await asyncio.wait_for(poll_safely(ingestor, source), timeout=30)
    assert result.error is None
    assert len(state.published) == 2
    labels = {"source": source.name, "error": "PollTooLong"}
    assert _sample("caravan_ingest_poll_errors_total", labels) is None


async def test_a_poll_slow_in_fetching_after_a_pause_for_the_indexer_is_still_cut() -> None:
    state = _Memory()
    site = _Site(0.2, hangs="http://site.test/a2")
    ingestor = _ingestor(site, state, _IndexerBehind(0.4))
    source = Source(name="paused-then-slow", url="http://site.test/feed", interval=0.1)
    result = await asyncio.wait_for(poll_safely(ingestor, source), timeout=30)
    assert result.error is not None
    assert result.error.startswith("PollTooLong")
    assert len(state.published) == 1  # the first article, after its pause
