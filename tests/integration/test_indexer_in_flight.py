"""The indexer's run loop with several batches in flight: bounded, and nothing lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from services.indexer.consumer import Consumer
from shared.consumer import Entry
from shared.events import DeadLetter
from shared.index import IndexNames
from shared.settings import IndexerSettings
from tests.conftest import Namespace
from tests.integration.conftest import article, ids_in, publish

pytestmark = pytest.mark.integration


class WatchedConsumer(Consumer):
    """The real consumer, noting the most entries it ever held after a read."""

    most_held = 0

    async def read(self) -> list[Entry]:
        entries = await super().read()
        self.most_held = max(self.most_held, self.reader.held)
        return entries


async def refuse_dead_letters(letter: DeadLetter) -> None:
    raise AssertionError(f"nothing here should be dead-lettered: {letter.error_message}")


async def all_acknowledged(redis: Redis, stream: str, count: int) -> bool:
    groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    return bool(groups) and (groups[0]["entries-read"] or 0) >= count and groups[0]["pending"] == 0


async def test_what_the_indexer_holds_is_bounded_by_in_flight_times_batch(
    redis: Redis, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    settings = IndexerSettings(
        consumer="bounded", block_ms=50, batch_size=7, max_in_flight=3, linger_ms=0
    )
    consumer = WatchedConsumer(
        redis,
        es,
        namespace.streams,
        IndexNames(namespace.index_prefix),
        settings,
        refuse_dead_letters,
    )
    await consumer.ensure_groups()
    articles = [article(n) for n in range(150)]
    await publish(redis, namespace.streams.articles, *articles)

    task = asyncio.create_task(consumer.run())
    async with asyncio.timeout(60):
        while not await all_acknowledged(redis, namespace.streams.articles, len(articles)):
            await asyncio.wait({task}, timeout=0.05)  # the loop's progress, or its failure
            assert not task.done(), task
    consumer.stop()
    await asyncio.wait_for(task, timeout=10)
    await es.indices.refresh(index=namespace.articles)

    assert await ids_in(es, namespace.articles) == sorted(a.idempotency_key for a in articles)
    assert 0 < consumer.most_held <= settings.max_in_flight * settings.batch_size
    assert consumer.limit.limit <= settings.max_in_flight
