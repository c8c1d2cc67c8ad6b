"""The ingest loop: for each source, fetch, parse, publish; then wait for its interval."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import structlog
from faststream.redis.publisher.usecase import StreamPublisher

from services.ingest.feeds import FeedError, parse_feed
from services.ingest.sources import Source
from shared.fetch import FetchError, fetch_bytes

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PollResult:
    source: str
    published: int
    skipped: int
    error: str | None = None


async def poll_source(
    source: Source,
    publisher: StreamPublisher,
    client: httpx.AsyncClient,
    *,
    max_bytes: int,
) -> PollResult:
    """Fetch one source once and publish its items. Raises FetchError or FeedError."""
    content = await fetch_bytes(source.url, client, max_bytes=max_bytes)
    parsed = parse_feed(content, source, fetched_at=datetime.now(UTC))
    if parsed.warning:
        log.warning("feed not well-formed, read what could be recovered",
                    source=source.name, detail=parsed.warning)
    for skipped in parsed.skipped:
        log.warning("feed item skipped", source=source.name, position=skipped.position,
                    reason=skipped.reason)
    for event in parsed.events:
        await publisher.publish(event)
        log.debug("article published", event_id=str(event.event_id), url=event.url)
    log.info("source polled", source=source.name, published=len(parsed.events),
             skipped=len(parsed.skipped))
    return PollResult(source.name, len(parsed.events), len(parsed.skipped))


async def poll_source_safely(
    source: Source, publisher: StreamPublisher, client: httpx.AsyncClient, *, max_bytes: int
) -> PollResult:
    """Like poll_source, but a bad source is logged and reported, never raised."""
    try:
        return await poll_source(source, publisher, client, max_bytes=max_bytes)
    except (FetchError, FeedError) as exc:
        log.error("source failed", source=source.name, error=str(exc),
                  error_class=type(exc).__name__)
        return PollResult(source.name, 0, 0, error=str(exc))


async def run_source_forever(
    source: Source, publisher: StreamPublisher, client: httpx.AsyncClient, *, max_bytes: int
) -> None:
    """Poll one source on its interval; a failing source tries again next time."""
    while True:
        await poll_source_safely(source, publisher, client, max_bytes=max_bytes)
        await asyncio.sleep(source.interval)
