"""Rebuilding an index behind its alias while people search it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from services.indexer import reindex as reindex_module
from services.indexer.reindex import ReindexIncomplete, ReindexResult, current_index, reindex
from shared.index import IndexNames
from shared.settings import Settings
from shared.streams import DATA_FIELD
from tests.conftest import REPO, Namespace
from tests.integration.conftest import MakeConsumer, article, drain, publish
from tests.streams import add

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
    make_consumer: MakeConsumer,
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
    from_streams: bool,
    settings: Settings,
) -> None:
    events = [article(n) for n in range(1200)]
    await publish(redis, namespace.streams.articles, *events)
    await drain(make_consumer(batch_size=500), es)
    names = IndexNames(namespace.index_prefix)

    done = asyncio.Event()
    searcher = asyncio.create_task(_search_until(es, names.articles, done))
    await asyncio.sleep(0.05)
    if from_streams:
        result = await reindex(
            es, names, names.articles, settings.common, redis=redis, streams=namespace.streams
        )
    else:
        result = await reindex(es, names, names.articles, settings.common)
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


@pytest.mark.parametrize("from_streams", [False, True], ids=["from-index", "from-streams"])
async def test_reindex_bulks_are_bounded_in_bytes(
    make_consumer: MakeConsumer,
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
    from_streams: bool,
    settings: Settings,
) -> None:
    await publish(redis, namespace.streams.articles, *(article(n) for n in range(300)))
    await drain(make_consumer(batch_size=500), es)
    names = IndexNames(namespace.index_prefix)
    bulks: list[list[int]] = []
    bulk = es.bulk

    async def weighed(*, operations: list[Any], **options: Any) -> Any:
        bulks.append([len(str(line)) for line in operations[1::2]])
        return await bulk(operations=operations, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(es, "bulk", weighed)
        result = await reindex(
            es,
            names,
            names.articles,
            settings.common,
            max_bytes=20_000,
            redis=redis if from_streams else None,
            streams=namespace.streams if from_streams else None,
        )

    assert result.copied == 300
    # The copy, then the catch-up from the old index after the swap.
    assert sum(len(documents) for documents in bulks) == 2 * 300
    # The last document of a bulk may pass the bound; the ones before it never do.
    assert all(sum(documents[:-1]) < 20_000 for documents in bulks)


async def test_writes_after_the_swap_land_in_the_new_index(
    make_consumer: MakeConsumer,
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
    settings: Settings,
) -> None:
    names = IndexNames(namespace.index_prefix)
    await publish(redis, namespace.streams.articles, article(1))
    consumer = make_consumer()
    await drain(consumer, es)

    result = await reindex(es, names, names.articles, settings.common)
    await publish(redis, namespace.streams.articles, article(2))
    await drain(consumer, es)

    new = await es.search(index=result.new_index, query={"match_all": {}})
    old = await es.search(index=result.old_index, query={"match_all": {}})
    assert {h["_id"] for h in new["hits"]["hits"]} == {
        article(1).idempotency_key,
        article(2).idempotency_key,
    }
    assert {h["_id"] for h in old["hits"]["hits"]} == {article(1).idempotency_key}


async def _old_index_with_a_misfit(es: AsyncElasticsearch, names: IndexNames) -> str:
    """An articles-v1 made by an older mapping (published_at a keyword), holding three
    documents, one of which the current mapping (published_at a date) refuses."""
    old = IndexNames.versioned(names.articles)
    await es.indices.create(
        index=old,
        aliases={names.articles: {"is_write_index": True}},
        mappings={"properties": {"published_at": {"type": "keyword"}}},
    )
    for n, published in enumerate(["2026-01-01T00:00:00Z", "last Tuesday", "2026-01-03T00:00:00Z"]):
        document = article(n).model_dump(mode="json") | {"published_at": published}
        await es.index(
            index=old, id=f"doc-{n}", document=document, version=1, version_type="external"
        )
    await es.indices.refresh(index=old)
    return old


async def test_a_page_of_the_streams_without_one_event_is_passed_over(
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A page of entries none of which is an event (poison at the stream's end, say) was
    # sent as a bulk of nothing, which Elasticsearch refuses; and the half-built index
    # it left took the next version's name, so every later reindex failed too.
    monkeypatch.setattr(reindex_module, "PAGE", 2)
    stream = namespace.streams.articles
    await publish(redis, stream, article(1), article(2))
    for _ in range(2):
        await add(redis, stream, {DATA_FIELD: b"not an event"})
    names = IndexNames(namespace.index_prefix)

    result = await _from_streams(es, names, settings, redis, namespace)

    assert result.copied == 2
    assert await current_index(es, names.articles) == result.new_index


async def test_a_reindex_that_fails_leaves_no_index_behind(
    redis: Redis, es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    names = IndexNames(namespace.index_prefix)
    await publish(redis, namespace.streams.articles, article(1))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reindex_module, "_from_stream", _redis_gone)
        with pytest.raises(ConnectionError):
            await _from_streams(es, names, settings, redis, namespace)
    assert not await es.indices.exists(index=IndexNames.versioned(names.articles, 2))
    # The next one finds the version free.
    result = await _from_streams(es, names, settings, redis, namespace)
    assert result.new_index == IndexNames.versioned(names.articles, 2)


async def test_a_failed_cleanup_does_not_hide_why_the_reindex_failed(
    redis: Redis, es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    names = IndexNames(namespace.index_prefix)
    await publish(redis, namespace.streams.articles, article(1))

    async def refused(**_: object) -> None:
        raise OSError("elasticsearch went away too")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reindex_module, "_from_stream", _redis_gone)
        patch.setattr(es.indices, "delete", refused)
        with pytest.raises(ConnectionError, match="redis went away"):
            await _from_streams(es, names, settings, redis, namespace)


async def _redis_gone(*_: object) -> AsyncIterator[list[object]]:
    """The stream's pages, as Redis going away in the middle of a copy leaves them."""
    raise ConnectionError("redis went away")
    yield []  # an async generator, as the stream's pages are


async def _from_streams(
    es: AsyncElasticsearch,
    names: IndexNames,
    settings: Settings,
    redis: Redis,
    namespace: Namespace,
) -> ReindexResult:
    return await reindex(
        es, names, names.articles, settings.common, redis=redis, streams=namespace.streams
    )


async def test_a_document_that_fails_to_copy_keeps_the_alias_on_the_old_index(
    es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    names = IndexNames(namespace.index_prefix)
    old = await _old_index_with_a_misfit(es, names)

    with pytest.raises(ReindexIncomplete) as refused:
        await reindex(es, names, names.articles, settings.common)

    assert [f.doc_id for f in refused.value.failures] == ["doc-1"]
    assert "published_at" in refused.value.failures[0].reason
    assert f"{names.articles} still points at {old}" in str(refused.value)
    assert await current_index(es, names.articles) == old
    assert not await es.indices.exists(index=IndexNames.versioned(names.articles, 2))
    assert (await es.count(index=names.articles))["count"] == 3


async def test_caravan_reindex_reports_the_failures_and_exits_non_zero(
    es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    names = IndexNames(namespace.index_prefix)
    old = await _old_index_with_a_misfit(es, names)

    # The namespace fixture has put its index prefix into this process's environment.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services",
        "reindex",
        "articles",
        cwd=REPO,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()

    assert process.returncode == 1, out.decode()
    assert "1 documents of" in err.decode()
    assert "doc-1: " in err.decode()
    assert await current_index(es, names.articles) == old
    # Nothing is left in the way of a second run once the document is fixed.
    await es.delete(index=old, id="doc-1", refresh=True)
    assert (await reindex(es, names, names.articles, settings.common)).copied == 2
