"""Rebuild an index behind its alias without downtime, and without `_reindex`.

The minimal Elasticsearch distribution has no reindex module, so documents are
copied by the indexer itself:

1. create the next versioned index (`articles-v2`) from the current template;
2. fill it, either by reading the live index through a point in time with
   `search_after`, or by replaying what the streams retain;
3. swap the alias to it in one atomic `_aliases` call: searches never see a
   missing or half-filled index, and writes move over at that instant. Only if
   every document was copied: when any was refused (a mapping it no longer fits)
   or held back (the cluster overloaded), the alias stays, the half-filled index
   is deleted so that a second run can create it again, and ReindexIncomplete
   lists the documents with the reasons;
4. copy once more from the old index, to catch documents written between the
   snapshot and the swap. External versions make that copy safe: a document
   the new index already holds at the same or a newer version is left alone.

The old index is kept; delete it once satisfied (`DELETE /articles-v1`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from services.indexer.bulk import (
    ItemOutcome,
    ItemResult,
    classify_response,
    superseding,
)
from services.indexer.decode import Invalid, decode_entry
from services.indexer.documents import BulkAction, stored_source
from services.indexer.grouping import groups
from services.indexer.mappings import ensure_indices
from services.indexer.writer import BULK_RESPONSE, delete_superseded
from shared.clients import make_elasticsearch, make_redis
from shared.consumer import read_range
from shared.index import IndexNames
from shared.settings import BULK_MAX_BYTES, CommonSettings, Settings
from shared.streams import Streams

log = structlog.get_logger(__name__)

PAGE = 1000


@dataclass(frozen=True)
class CopyFailure:
    doc_id: str
    reason: str


@dataclass(frozen=True)
class ReindexResult:
    alias: str
    old_index: str
    new_index: str
    copied: int
    skipped: int
    """Left alone: the new index already held that version or a newer one."""
    late_failures: list[CopyFailure] = field(default_factory=list)
    """Documents written during the rebuild that the copy after the swap could not
    move: they are in the old index only."""


class ReindexIncomplete(Exception):
    """Documents failed to copy, so the alias was not swapped."""

    SHOWN = 20

    def __init__(self, alias: str, old: str, new: str, failures: list[CopyFailure]) -> None:
        self.failures = failures
        listed = "; ".join(f"{f.doc_id}: {f.reason}" for f in failures[: self.SHOWN])
        more = f"; and {len(failures) - self.SHOWN} more" if len(failures) > self.SHOWN else ""
        super().__init__(
            f"{len(failures)} documents of {old} failed to copy, so {alias} still points at "
            f"{old} and {new} was deleted; fix them and run again: {listed}{more}"
        )


@dataclass
class _Tally:
    stored: int = 0
    stale: int = 0
    failed: list[CopyFailure] = field(default_factory=list)


def next_version(index: str) -> int:
    match = re.search(r"-v(\d+)$", index)
    return int(match.group(1)) + 1 if match else 1


async def current_index(es: AsyncElasticsearch, alias: str) -> str:
    aliases = await es.indices.get_alias(name=alias)
    for index, info in aliases.items():
        if info["aliases"][alias].get("is_write_index", len(aliases) == 1):
            return str(index)
    msg = f"alias {alias} has no write index"
    raise LookupError(msg)


async def reindex(
    es: AsyncElasticsearch,
    names: IndexNames,
    alias: str,
    common: CommonSettings,
    *,
    max_bytes: int = BULK_MAX_BYTES,
    redis: Redis | None = None,
    streams: Streams | None = None,
) -> ReindexResult:
    """Rebuild `alias`; from the streams when `redis` and `streams` are given.

    The new index takes its layout from `common`, as the indexer's templates do. Bulk
    requests, and the pages read from the streams, weigh about `max_bytes` at most."""
    await ensure_indices(es, names, common)
    old = await current_index(es, alias)
    new = IndexNames.versioned(alias, next_version(old))
    await es.indices.create(index=new)
    log.info("reindex started", alias=alias, old=old, new=new)

    try:
        if redis is not None and streams is not None:
            stream = streams.articles if alias == names.articles else streams.quotes
            pages = _from_stream(redis, stream, streams, names, alias, max_bytes)
        else:
            pages = _from_index(es, old, alias == names.articles)
        tally = await _copy(es, new, pages, max_bytes)
        if tally.failed:
            log.error(
                "reindex abandoned, alias kept",
                alias=alias,
                old=old,
                deleted=new,
                failed=len(tally.failed),
            )
            raise ReindexIncomplete(alias, old, new, tally.failed)
        await es.indices.refresh(index=new)
    except BaseException:
        # Left behind, the half-built index took the next version's name: every later
        # reindex failed to create it until someone deleted it by hand. Before the swap
        # only: after it, the new index is the alias's.
        await _drop(es, new)
        raise
    await es.indices.update_aliases(
        actions=[
            {"remove": {"index": old, "alias": alias}},
            {"add": {"index": new, "alias": alias, "is_write_index": True}},
        ]
    )
    log.info("alias swapped", alias=alias, to=new)
    late = await _copy(es, new, _from_index(es, old, alias == names.articles), max_bytes)
    log.info(
        "reindex finished",
        alias=alias,
        copied=tally.stored,
        skipped=tally.stale,
        caught_up=late.stored,
        late_failures=len(late.failed),
    )
    return ReindexResult(alias, old, new, tally.stored, tally.stale, late.failed)


async def _drop(es: AsyncElasticsearch, index: str) -> None:
    """Delete a half-built index; a failure is told, the reindex's own error raised."""
    try:
        await es.indices.delete(index=index, ignore_unavailable=True)
    except Exception as exc:  # Elasticsearch away, often why the reindex failed
        log.warning("half-built index left behind", index=index, error=str(exc))


async def _copy(
    es: AsyncElasticsearch, index: str, pages: AsyncIterator[list[BulkAction]], max_bytes: int
) -> _Tally:
    """Bulk the pages into `index`, about `max_bytes` a request (a page of 1,000 long
    articles could pass the cluster's limit on a body, 100 MB by default): what was
    stored, left alone as stale, or failed."""
    tally = _Tally()
    async for page in pages:
        # An empty page makes no group: a bulk of nothing is a 400.
        for bulk in groups(page, lambda action: action.size, max_bytes):
            operations: list[Any] = []
            for action in bulk:
                header, document = action.operations()
                header["index"]["_index"] = index
                operations.extend((header, document))
            answer = await es.bulk(operations=operations, filter_path=BULK_RESPONSE)
            results = classify_response(answer.body, len(bulk))
            # Replayed from the streams, an event deletes what it supersedes here too
            # (the feed's version it replaced was copied before it), once it is copied.
            if positions := superseding(bulk, results):
                owed, reason = await delete_superseded(es, bulk, positions, index)
                held = ItemResult(ItemOutcome.HOLD, 503, f"superseded not deleted: {reason}")
                results = [held if p in owed else r for p, r in enumerate(results)]
            for action, result in zip(bulk, results, strict=True):
                if result.outcome is ItemOutcome.STORED:
                    tally.stored += 1
                elif result.outcome is ItemOutcome.STALE:
                    tally.stale += 1
                else:
                    log.warning("document not copied", id=action.doc_id, reason=result.reason)
                    tally.failed.append(CopyFailure(action.doc_id, result.reason))
    return tally


async def _from_index(
    es: AsyncElasticsearch, index: str, articles: bool
) -> AsyncIterator[list[BulkAction]]:
    pit = await es.open_point_in_time(index=index, keep_alive="2m")
    pit_id = pit["id"]
    after: list[Any] | None = None
    try:
        while True:
            body: dict[str, Any] = {
                "size": PAGE,
                "version": True,
                "sort": ["_shard_doc"],
                "pit": {"id": pit_id, "keep_alive": "2m"},
            }
            if after is not None:
                body["search_after"] = after
            response = await es.search(body=body)
            hits = response["hits"]["hits"]
            if not hits:
                return
            pit_id = response.get("pit_id", pit_id)
            after = hits[-1]["sort"]
            yield [
                BulkAction(
                    index, h["_id"], int(h["_version"]), stored_source(h["_source"], articles)
                )
                for h in hits
            ]
    finally:
        await es.close_point_in_time(id=pit_id)


async def _from_stream(
    redis: Redis, stream: str, streams: Streams, names: IndexNames, alias: str, max_bytes: int
) -> AsyncIterator[list[BulkAction]]:
    after = "-"
    while entries := await read_range(redis, stream, after, most=PAGE, budget=max_bytes):
        page = []
        for entry in entries:
            decoded = decode_entry(entry, streams, names)
            if not isinstance(decoded, Invalid) and decoded.index == alias:
                page.append(decoded)
        yield page
        after = entries[-1].entry_id


async def reindex_configured(
    settings: Settings, which: str, *, from_streams: bool
) -> ReindexResult:
    """`caravan reindex`: the clients and names come from the command's settings."""
    common = settings.common
    names = IndexNames(common.index_prefix)
    alias = names.articles if which == "articles" else names.quotes
    max_bytes = settings.indexer.bulk_max_bytes
    async with make_elasticsearch(settings.elasticsearch) as es:
        if not from_streams:
            return await reindex(es, names, alias, common, max_bytes=max_bytes)
        async with make_redis(settings.redis) as redis:
            return await reindex(
                es, names, alias, common, max_bytes=max_bytes, redis=redis, streams=Streams(common)
            )
