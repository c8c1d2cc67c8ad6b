"""Rebuilding an index behind its alias while people search it."""

from __future__ import annotations

import asyncio

import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from services.indexer.mappings import IndexNames
from services.indexer.reindex import current_index, reindex
from tests.conftest import Namespace
from tests.integration.conftest import MakeConsumer, article, drain, publish

pytestmark = pytest.mark.integration


async def _search_until(es: AsyncElasticsearch, alias: str, done: asyncio.Event) -> list[int]:
    totals = []
    while not done.is_set():
        response = await es.search(index=alias, size=0, track_total_hits=True)
        totals.append(int(response["hits"]["total"]["value"]))
        await asyncio.sleep(0.01)
    return totals


@pytest.mark.parametrize("from_streams", [False, True], ids=["from-index", "from-streams"])
async def test_reindex_swaps_the_alias_with_everything_and_no_gap_for_searches(
    make_consumer: MakeConsumer, redis: Redis, es: AsyncElasticsearch, namespace: Namespace,
    from_streams: bool,
) -> None:
    events = [article(n) for n in range(1200)]
    await publish(redis, namespace.streams.articles, *events)
    await drain(make_consumer(batch_size=500), es)
    names = IndexNames(namespace.index_prefix)

    done = asyncio.Event()
    searcher = asyncio.create_task(_search_until(es, names.articles, done))
    await asyncio.sleep(0.05)
    if from_streams:
        result = await reindex(es, names, names.articles, redis=redis,
                               streams=namespace.streams)
    else:
        result = await reindex(es, names, names.articles)
    done.set()
    totals = await searcher

    assert (result.old_index, result.new_index) == (f"{names.articles}-v1", f"{names.articles}-v2")
    assert result.copied == 1200
    assert await current_index(es, names.articles) == f"{names.articles}-v2"
    assert totals
    assert set(totals) == {1200}  # every search during the rebuild saw all documents
    await es.indices.refresh(index=result.new_index)
    count = await es.count(index=result.new_index)
    assert count["count"] == 1200
    assert await es.indices.exists(index=result.old_index)  # kept until someone drops it


async def test_writes_after_the_swap_land_in_the_new_index(
    make_consumer: MakeConsumer, redis: Redis, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    names = IndexNames(namespace.index_prefix)
    await publish(redis, namespace.streams.articles, article(1))
    consumer = make_consumer()
    await drain(consumer, es)

    result = await reindex(es, names, names.articles)
    await publish(redis, namespace.streams.articles, article(2))
    await drain(consumer, es)

    new = await es.search(index=result.new_index, query={"match_all": {}})
    old = await es.search(index=result.old_index, query={"match_all": {}})
    assert {h["_id"] for h in new["hits"]["hits"]} == {article(1).idempotency_key,
                                                       article(2).idempotency_key}
    assert {h["_id"] for h in old["hits"]["hits"]} == {article(1).idempotency_key}
