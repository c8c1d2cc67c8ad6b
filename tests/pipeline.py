"""Fill a test namespace through the real pipeline, and talk to the query API over ASGI.

Events go through ingest and ratefeed onto the streams, an in-process indexer
writes them to Elasticsearch, as in production; the query app then runs with
its lifespan, in process, behind an httpx client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from services.indexer.app import deadletters_publisher
from services.indexer.consumer import Consumer
from services.indexer.mappings import ensure_indices
from services.ingest.app import ingest_configured_once
from services.query.app import create_app
from services.ratefeed.app import ratefeed_once
from shared.index import IndexNames
from shared.service import ServiceContext
from shared.settings import IndexerSettings
from tests.conftest import REALDATA, REPO, Namespace


async def index_streams(redis: Redis, es: AsyncElasticsearch, namespace: Namespace) -> None:
    """Index everything on the namespace's streams, then make it searchable."""
    ctx = ServiceContext("indexer")
    names = IndexNames(namespace.index_prefix)
    await ensure_indices(es, names)
    consumer = Consumer(redis, es, namespace.streams, names,
                        IndexerSettings(consumer="t", block_ms=50),
                        deadletters_publisher(ctx).publish)
    await consumer.ensure_groups()
    async with ctx.broker:
        await ctx.broker.connect()
        while await consumer.step():
            pass
    await es.indices.refresh(index=f"{namespace.index_prefix}*")


async def fill_from_samples(redis: Redis, es: AsyncElasticsearch, namespace: Namespace,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Every bundled sample source and the Bank of Russia file, indexed."""
    monkeypatch.setenv("CARAVAN_INGEST_SOURCES", str(REPO / "samples" / "sources.toml"))
    await ingest_configured_once()
    await ratefeed_once(str(REALDATA / "cbr-xml-daily-2023-09-27.xml"))
    await index_streams(redis, es, namespace)


@asynccontextmanager
async def query_client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://query") as client):
        yield client
