"""ratefeed entry point: poll the configured rates source forever, or one document once."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator

from faststream.redis import StreamSub
from faststream.redis.publisher.usecase import StreamPublisher

from services.ratefeed.store import LastRateStore
from services.ratefeed.worker import poll_rates, run_forever
from shared.clients import make_redis
from shared.events import QuoteEvent
from shared.fetch import http_client
from shared.service import BackgroundService, ServiceContext
from shared.settings import RateFeedSettings

SERVICE = "ratefeed"


def quotes_publisher(ctx: ServiceContext) -> StreamPublisher:
    return ctx.broker.publisher(
        stream=StreamSub(ctx.streams.quotes, maxlen=ctx.streams.maxlen),
        schema=QuoteEvent,
        title="quotes",
        description="One QuoteEvent per currency and new as-of date: X/USD with its daily change.",
    )


def create_service() -> BackgroundService:
    ctx = ServiceContext(SERVICE)
    ctx.configure_logging()
    settings = RateFeedSettings()
    publisher = quotes_publisher(ctx)
    redis = make_redis(ctx.redis_settings)
    store = LastRateStore(redis, ctx.common.stream_prefix)

    def tasks() -> Iterator[Awaitable[None]]:
        client = http_client(ctx.common.user_agent, settings.timeout)
        yield run_forever(settings.source, settings.interval, publisher, store, client)

    return BackgroundService(ctx.broker, tasks, probe=ctx.redis_probe(), health_port=8082)


async def ratefeed_once(location: str) -> list[QuoteEvent]:
    ctx = ServiceContext(SERVICE)
    ctx.configure_logging()
    settings = RateFeedSettings()
    publisher = quotes_publisher(ctx)
    redis = make_redis(ctx.redis_settings)
    store = LastRateStore(redis, ctx.common.stream_prefix)
    try:
        async with ctx.broker, http_client(ctx.common.user_agent, settings.timeout) as client:
            await ctx.broker.connect()
            return await poll_rates(location, publisher, store, client)
    finally:
        await redis.aclose()


def main() -> None:
    create_service().main()
