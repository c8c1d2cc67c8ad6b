"""indexer entry point: templates and aliases at start-up, then the consumer loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator

from faststream.redis import StreamSub

from services.indexer.consumer import Consumer
from services.indexer.deadletters import letter_writer
from services.indexer.ledger import SERVICE
from services.indexer.mappings import ensure_indices_held
from services.indexer.matcher import Matcher
from services.indexer.upkeep import Upkeep
from shared.backoff import Backoff
from shared.clients import (
    elasticsearch_ready,
    make_elasticsearch,
    make_redis,
    wait_for_elasticsearch,
)
from shared.events import DeadLetter, SavedSearchMatch
from shared.health import Readiness, redis_ready
from shared.index import IndexNames
from shared.service import BackgroundService, ServiceContext
from shared.settings import Settings
from shared.streams import Publisher, add_events

HEALTH_PORT = 8083


def deadletters_publisher(ctx: ServiceContext) -> Publisher[DeadLetter]:
    return ctx.broker.publisher(
        stream=StreamSub(ctx.streams.deadletters, maxlen=ctx.streams.maxlen),
        schema=DeadLetter,
        title="deadletters",
        description="Entries the indexer could not index, byte for byte, with the reason.",
    )


def matches_publisher(ctx: ServiceContext) -> Publisher[SavedSearchMatch]:
    """The matches stream as the AsyncAPI document declares it. The matcher writes the
    same entries a round at a time (`add_events`: thousands a batch, one round trip)."""
    return ctx.broker.publisher(
        stream=StreamSub(ctx.streams.matches, maxlen=ctx.streams.maxlen),
        schema=SavedSearchMatch,
        title="matches",
        description="Saved searches matched by the articles the indexer has just stored: "
        "one event per saved search, article and text (see docs/events.md).",
    )


def create_service(all_settings: Settings) -> BackgroundService:
    ctx = ServiceContext(SERVICE, all_settings)
    ctx.configure_logging()
    settings = all_settings.indexer
    # Both streams as the AsyncAPI document declares them; the letters are written once
    # each (`letter_writer`), the matches a round at a time.
    deadletters_publisher(ctx)
    matches_publisher(ctx)
    redis = make_redis(ctx.redis_settings)
    es = make_elasticsearch(all_settings.elasticsearch)
    names = IndexNames(ctx.common.index_prefix)

    async def publish_matches(matches: list[SavedSearchMatch]) -> None:
        await add_events(redis, ctx.streams.matches, matches, ctx.streams.maxlen)

    matcher = Matcher(
        es, redis, names, ctx.streams, settings, publish_matches, time_zone=ctx.common.time_zone
    )
    letters = letter_writer(redis, ctx.streams, settings.retention_hours)
    consumer = Consumer(redis, es, ctx.streams, names, settings, letters, matcher=matcher)
    upkeep = Upkeep(
        redis, ctx.streams, settings, ctx.common.stream_groups, ctx.common.abandon_after_ms
    )
    indices_ready = asyncio.Event()

    async def consume() -> None:
        await wait_for_elasticsearch(es, names.owned)
        await ensure_indices_held(
            es, names, ctx.common, Backoff(settings.retry_base_delay, settings.retry_max_delay)
        )
        indices_ready.set()
        await consumer.run()

    async def probe() -> Readiness:
        hold = consumer.hold.describe()
        checks = {
            "redis": await redis_ready(redis, *ctx.streams.consumed),
            "elasticsearch": await elasticsearch_ready(es, names.owned),
            "indices": indices_ready.is_set(),
            "writing": hold is None,
        }
        return Readiness(checks, {**upkeep.snapshot, "hold": hold})

    async def close() -> None:
        await es.close()
        await redis.aclose()

    def tasks() -> Iterator[Awaitable[None]]:
        yield consume()
        yield upkeep.run(consumer.stopping)

    return BackgroundService(
        ctx.broker,
        tasks,
        probe=probe,
        grace=all_settings.common.shutdown_grace,
        health=all_settings.health,
        health_port=HEALTH_PORT,
        request_stop=consumer.stop,
        on_closed=close,
    )


def main(settings: Settings) -> None:
    create_service(settings).main()
