"""indexer entry point: templates and aliases at start-up, then the consumer loop."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator

from faststream.redis import StreamSub
from faststream.redis.publisher.usecase import StreamPublisher

from services.indexer.consumer import SERVICE, Consumer
from services.indexer.mappings import IndexNames, ensure_indices
from shared.clients import make_elasticsearch, make_redis, wait_for_elasticsearch
from shared.events import DeadLetter
from shared.service import BackgroundService, ServiceContext
from shared.settings import ElasticsearchSettings, IndexerSettings


def deadletters_publisher(ctx: ServiceContext) -> StreamPublisher:
    return ctx.broker.publisher(
        stream=StreamSub(ctx.streams.deadletters, maxlen=ctx.streams.maxlen),
        schema=DeadLetter,
        title="deadletters",
        description="Entries the indexer could not index, byte for byte, with the reason.",
    )


def create_service() -> BackgroundService:
    ctx = ServiceContext(SERVICE)
    ctx.configure_logging()
    settings = IndexerSettings()
    publisher = deadletters_publisher(ctx)
    redis = make_redis(ctx.redis_settings)
    es = make_elasticsearch(ElasticsearchSettings())
    names = IndexNames(ctx.common.index_prefix)
    consumer = Consumer(redis, es, ctx.streams, names, settings, publisher.publish)

    async def consume() -> None:
        try:
            await wait_for_elasticsearch(es)
            await ensure_indices(es, names)
            await consumer.run()
        finally:
            await es.close()
            await redis.aclose()

    def tasks() -> Iterator[Awaitable[None]]:
        yield consume()

    return BackgroundService(ctx.broker, tasks, request_stop=consumer.stop)


def main() -> None:
    create_service().main()
