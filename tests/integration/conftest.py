"""Helpers of the integration tests: build an in-process indexer and feed it events."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from services.indexer.consumer import Consumer
from services.indexer.deadletters import letter_writer
from services.indexer.mappings import ensure_indices
from shared.events import ArticleEvent, DeadLetter, QuoteEvent, content_hash
from shared.index import IndexNames
from shared.settings import FetchSettings, IndexerSettings, Settings
from shared.streams import DATA_FIELD
from tests.conftest import Namespace
from tests.loopback import LoopbackServer, static
from tests.streams import add, entries

MakeConsumer = Callable[..., Consumer]


@pytest.fixture
async def make_consumer(
    redis: Redis, es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> MakeConsumer:
    letters = letter_writer(redis, namespace.streams, settings.indexer.retention_hours)
    names = IndexNames(namespace.index_prefix)
    await ensure_indices(es, names, settings.common)

    def build(client: Redis | None = None, **settings: Any) -> Consumer:
        """A consumer of `settings` over `client` (by default the test's own Redis)."""
        defaults: dict[str, Any] = {"consumer": "live", "block_ms": 50, "retry_base_delay": 0.01}
        return Consumer(
            client or redis,
            es,
            namespace.streams,
            names,
            IndexerSettings(**(defaults | settings)),
            letters,
        )

    return build


def article(
    n: int, *, fetched_at: datetime | None = None, title: str | None = None
) -> ArticleEvent:
    title = title or f"Article number {n} about the Caspian"
    return ArticleEvent(
        source="test",
        url=f"https://news.example/{n}",
        canonical_url=f"https://news.example/{n}",
        title=title,
        body=f"Body of article {n}.",
        fetched_at=fetched_at or datetime(2026, 1, 1, tzinfo=UTC),
        content_hash=content_hash(title, f"Body of article {n}."),
    )


async def publish(redis: Redis, stream: str, *events: ArticleEvent | QuoteEvent) -> None:
    for event in events:
        await add(redis, stream, {DATA_FIELD: event.model_dump_json().encode()})


async def drain(consumer: Consumer, es: AsyncElasticsearch) -> None:
    await consumer.run(burst=True)
    await es.indices.refresh(index="*")


async def ids_in(es: AsyncElasticsearch, index: str) -> list[str]:
    response = await es.search(index=index, size=1000, query={"match_all": {}})
    return sorted(hit["_id"] for hit in response["hits"]["hits"])


async def dead_letters(redis: Redis, namespace: Namespace) -> list[DeadLetter]:
    return [
        DeadLetter.model_validate_json(fields[DATA_FIELD])
        for _, fields in await entries(redis, namespace.streams.deadletters)
    ]


async def pending(redis: Redis, stream: str) -> int:
    summary = await redis.xpending(stream, "indexer")
    return int(summary["pending"])


@pytest.fixture
def web() -> Iterator[LoopbackServer]:
    """A real HTTP server on loopback that ingest may fetch from (see `web_settings`)."""
    server = LoopbackServer()
    server.routes["/robots.txt"] = static(b"User-agent: *\nDisallow: /private/\n", "text/plain")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    """`settings` that let ingest fetch from `web` (allow-listed), without delays to wait out."""
    return replace(
        settings,
        fetch=FetchSettings(allow="127.0.0.1"),
        ingest=settings.ingest.model_copy(update={"host_delay": 0, "retry_max_delay": 2}),
    )


async def published_articles(redis: Redis, namespace: Namespace) -> list[ArticleEvent]:
    return [
        ArticleEvent.model_validate_json(fields[DATA_FIELD])
        for _, fields in await entries(redis, namespace.streams.articles)
    ]
