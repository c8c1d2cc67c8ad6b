"""ingest entry point: poll every configured source forever, or one source once."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from pathlib import Path

from faststream.redis import StreamSub
from faststream.redis.publisher.usecase import StreamPublisher

from services.ingest.sources import Source, load_sources
from services.ingest.worker import (
    PollResult,
    poll_source,
    poll_source_safely,
    run_source_forever,
)
from shared.events import ArticleEvent
from shared.fetch import http_client
from shared.service import BackgroundService, ServiceContext
from shared.settings import IngestSettings

SERVICE = "ingest"


def articles_publisher(ctx: ServiceContext) -> StreamPublisher:
    return ctx.broker.publisher(
        stream=StreamSub(ctx.streams.articles, maxlen=ctx.streams.maxlen),
        schema=ArticleEvent,
        title="articles",
        description="One ArticleEvent per article seen in a source.",
    )


def create_service() -> BackgroundService:
    ctx = ServiceContext(SERVICE)
    ctx.configure_logging()
    settings = IngestSettings()
    publisher = articles_publisher(ctx)
    sources = load_sources(settings.sources)

    def tasks() -> Iterator[Awaitable[None]]:
        client = http_client(ctx.common.user_agent, settings.timeout)
        for source in sources:
            yield run_source_forever(source, publisher, client, max_bytes=settings.max_bytes)

    return BackgroundService(ctx.broker, tasks, probe=ctx.redis_probe(), health_port=8081)


async def ingest_once(location: str, name: str | None = None) -> PollResult:
    """Fetch and publish one feed (URL or path), then return. Raises on bad input."""
    ctx = ServiceContext(SERVICE)
    ctx.configure_logging()
    settings = IngestSettings()
    publisher = articles_publisher(ctx)
    source = Source(name=name or Path(location).stem or location, url=location)
    async with ctx.broker, http_client(ctx.common.user_agent, settings.timeout) as client:
        await ctx.broker.connect()
        return await poll_source(source, publisher, client, max_bytes=settings.max_bytes)


async def ingest_configured_once() -> list[PollResult]:
    """Poll every configured source once; failures are reported, not raised."""
    ctx = ServiceContext(SERVICE)
    ctx.configure_logging()
    settings = IngestSettings()
    publisher = articles_publisher(ctx)
    async with ctx.broker, http_client(ctx.common.user_agent, settings.timeout) as client:
        await ctx.broker.connect()
        return [await poll_source_safely(source, publisher, client, max_bytes=settings.max_bytes)
                for source in load_sources(settings.sources)]


def main() -> None:
    create_service().main()
