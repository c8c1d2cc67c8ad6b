"""ingest entry point: poll every configured source forever, or one source once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from faststream.redis import StreamSub

from services.ingest.backpressure import Backpressure
from services.ingest.kinds import Kind
from services.ingest.results import PollResult
from services.ingest.schedule import poll_safely, run_source_forever
from services.ingest.sources import Source, load_sources
from services.ingest.state import IngestState
from services.ingest.worker import ArticleStream, Ingestor
from shared.clients import make_redis
from shared.events import ArticleEvent
from shared.fetcher import FetchPolicy, PoliteFetcher
from shared.groups import check_lag_within_maxlen
from shared.leases import WorkShare
from shared.sandbox import Sandbox, SandboxLimits
from shared.service import BackgroundService, ServiceContext
from shared.settings import FetchSettings, IngestSettings, Settings, default_consumer
from shared.ssrf import AllowList
from shared.streams import Publisher
from shared.tasks import together

SERVICE = "ingest"


def articles_publisher(ctx: ServiceContext) -> Publisher[ArticleEvent]:
    return ctx.broker.publisher(
        stream=StreamSub(ctx.streams.articles, maxlen=ctx.streams.maxlen),
        schema=ArticleEvent,
        title="articles",
        description="One ArticleEvent per new or changed article seen in a source.",
    )


def fetch_policy(user_agent: str, settings: IngestSettings, fetch: FetchSettings) -> FetchPolicy:
    return FetchPolicy(
        user_agent=user_agent,
        timeout=settings.timeout,
        max_bytes=settings.max_bytes,
        max_redirects=settings.max_redirects,
        retries=settings.retries,
        backoff_max=settings.retry_max_delay,
        host_delay=settings.host_delay,
        host_concurrency=settings.host_concurrency,
        max_retry_after=fetch.max_retry_after,
        max_crawl_delay=fetch.max_crawl_delay,
        allow=AllowList.parse(fetch.allow),
    )


def parse_limits(settings: IngestSettings) -> SandboxLimits:
    return SandboxLimits(
        settings.parse_workers, settings.parse_timeout, settings.parse_memory_mb << 20
    )


def page_sandbox(limits: SandboxLimits) -> Sandbox:
    """Where fetched documents are parsed: worker processes that start with the parsers loaded."""
    return Sandbox(
        limits,
        preload=[
            "services.ingest.extract",
            "services.ingest.feeds",
            "services.ingest.sitemaps",
            "services.ingest.listing",
        ],
    )


@asynccontextmanager
async def _ingestor(ctx: ServiceContext) -> AsyncIterator[Ingestor]:
    settings = ctx.settings.ingest
    redis = make_redis(ctx.redis_settings)
    fetcher = PoliteFetcher(fetch_policy(ctx.common.user_agent, settings, ctx.settings.fetch))
    state = IngestState(redis, ctx.common.stream_prefix, int(settings.state_ttl_days * 86400))
    check_lag_within_maxlen(settings.max_lag, ctx.common.stream_maxlen)
    backpressure = Backpressure(
        redis, ctx.streams.articles, settings.max_lag, ctx.common.stream_groups
    )
    sandbox = page_sandbox(parse_limits(settings))
    try:
        yield Ingestor(
            ArticleStream(ctx.streams.articles, ctx.streams.maxlen),
            fetcher,
            state,
            sandbox,
            backpressure,
            sitemap_fetches=settings.sitemap_max_fetches_per_poll,
            articles_in_flight=settings.articles_in_flight,
        )
    finally:
        sandbox.close()
        await fetcher.aclose()
        await redis.aclose()


def create_service(settings: Settings) -> BackgroundService:
    ctx = ServiceContext(SERVICE, settings)
    ctx.configure_logging()
    sources = load_sources(settings.ingest.sources)
    resources = _ingestor(ctx)
    stopping = asyncio.Event()

    async def run_all() -> None:
        # Any number of replicas: each polls the sources whose leases it holds.
        redis = make_redis(ctx.redis_settings)
        share = WorkShare(
            redis,
            ctx.common.stream_prefix,
            SERVICE,
            [s.name for s in sources],
            default_consumer(),
            settings.ingest.lease_seconds,
            audit=settings.common.lease_audit,
        )
        try:
            async with resources as ingestor:
                await share.join()
                # When one fails the others are cancelled, rather than polling on with
                # the fetcher this block closes on the way out. On stop, each source
                # ends after the poll in hand, and the leases are renewed until they
                # all have.
                await together(
                    [
                        run_source_forever(ingestor, source, share=share, stopping=stopping)
                        for source in sources
                    ],
                    beside=[share.keep()],
                )
        finally:
            try:
                # A rolling update hands the sources over now, not after the leases expire.
                await share.hand_over()
            finally:
                await redis.aclose()

    def tasks() -> Iterator[Awaitable[None]]:
        yield run_all()

    return BackgroundService(
        ctx.broker,
        tasks,
        probe=ctx.redis_probe(ctx.streams.articles),
        grace=settings.common.shutdown_grace,
        health=settings.health,
        health_port=8081,
        request_stop=stopping.set,
    )


@asynccontextmanager
async def connected_ingestor(settings: Settings) -> AsyncIterator[Ingestor]:
    """An Ingestor on the configured Redis, for work that ends (one-shot commands)."""
    ctx = ServiceContext(SERVICE, settings)
    ctx.configure_logging()
    async with ctx.broker, _ingestor(ctx) as ingestor:
        await ctx.broker.connect()
        yield ingestor


async def ingest_once(
    settings: Settings,
    location: str,
    name: str | None = None,
    kind: Kind | None = None,
    since: datetime | None = None,
    max_items: int | None = None,
) -> PollResult:
    """Read one source (a feed, sitemap, listing or article; URL or path), the whole
    of it unless `max_items` bounds it, and publish its new and changed articles.
    Raises on a source that cannot be read."""
    source = Source(name=name or Path(location).stem or location, url=location, max_items=max_items)
    async with connected_ingestor(settings) as ingestor:
        return await ingestor.poll(source, kind, since)


async def ingest_configured_once(settings: Settings) -> list[PollResult]:
    """Poll every configured source once, all at once as the service does (the fetcher
    keeps each host's pace); failures are reported, not raised, in the sources' order."""
    sources = load_sources(settings.ingest.sources)  # a wrong file, before any connection
    async with connected_ingestor(settings) as ingestor:
        return await asyncio.gather(*(poll_safely(ingestor, source) for source in sources))


def main(settings: Settings) -> None:
    create_service(settings).main()
