"""The indexer's run loop with several batches in flight: bounded, and nothing lost."""

from __future__ import annotations

import asyncio

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


async def refuse_dead_letters(letter: DeadLetter) -> None:
    raise AssertionError(f"nothing here should be dead-lettered: {letter.error_message}")


async def test_what_the_indexer_holds_is_bounded_by_in_flight_times_batch(
    redis: Redis, es: AsyncElasticsearch, namespace: Namespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = IndexerSettings(
        consumer="bounded", block_ms=50, batch_size=7, max_in_flight=3, linger_ms=0
    )
    consumer = Consumer(
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

    most_held = 0
    read = consumer.reader.read  # observed, not replaced

    async def watched() -> list[Entry]:
        nonlocal most_held
        entries = await read()
        most_held = max(most_held, consumer.reader.held)
        return entries

    monkeypatch.setattr(consumer.reader, "read", watched)
    await asyncio.wait_for(consumer.run(burst=True), timeout=60)
    await es.indices.refresh(index=namespace.articles)

    assert await ids_in(es, namespace.articles) == sorted(a.idempotency_key for a in articles)
    assert await redis.xpending(namespace.streams.articles, settings.group) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }
    assert 0 < most_held <= settings.max_in_flight * settings.batch_size
    assert consumer.limit.limit <= settings.max_in_flight
