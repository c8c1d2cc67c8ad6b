"""Fill a test namespace through the real pipeline, and talk to the query API over ASGI.

Events go through ingest and ratefeed onto the streams, an in-process indexer
writes them to Elasticsearch, as in production; the query app then runs with
its lifespan, in process, behind an httpx client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from services.indexer.consumer import Consumer
from services.indexer.deadletters import letter_writer
from services.indexer.mappings import ensure_indices
from services.ingest.app import ingest_configured_once
from services.query.app import create_app
from services.ratefeed.app import ratefeed_once
from shared.index import IndexNames
from shared.settings import IndexerSettings, Settings
from shared.streams import Streams
from tests.conftest import REALDATA, REPO


async def index_streams(redis: Redis, es: AsyncElasticsearch, settings: Settings) -> None:
    """Index everything on the streams of `settings`, then make it searchable."""
    names = IndexNames(settings.common.index_prefix)
    streams = Streams(settings.common)
    await ensure_indices(es, names, settings.common)
    consumer = Consumer(
        redis,
        es,
        streams,
        names,
        IndexerSettings(consumer="t", block_ms=50),
        letter_writer(redis, streams, settings.indexer.retention_hours),
    )
    await consumer.run(burst=True)
    await es.indices.refresh(index=f"{settings.common.index_prefix}*")


async def fill_from_samples(redis: Redis, es: AsyncElasticsearch, settings: Settings) -> None:
    """Every bundled sample source and the Bank of Russia file, indexed."""
    samples = settings.ingest.model_copy(update={"sources": REPO / "samples" / "sources.toml"})
    await ingest_configured_once(replace(settings, ingest=samples))
    await ratefeed_once(settings, str(REALDATA / "cbr-xml-daily-2023-09-27.xml"))
    await index_streams(redis, es, settings)


@asynccontextmanager
async def query_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://query"
        ) as client,
    ):
        yield client
