"""Index templates and versioned indices behind aliases, made from shared/index.py's
mappings."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch, BadRequestError

from services.indexer.failures import Verdict, classify_request_error
from shared.backoff import Backoff
from shared.index import IndexNames, articles_mapping, quotes_mapping, saved_searches_mapping
from shared.settings import CommonSettings

log = structlog.get_logger(__name__)


# How long a deleted article's version is remembered (60 s by default): as long as the
# streams keep events by default, so that an older event of an article since superseded
# (ArticleEvent.supersedes) delivered again, claimed after a crash or replayed, is refused
# as stale rather than indexing the old copy again. Such deletes are rare: cheap to keep.
ARTICLE_TOMBSTONES = {"gc_deletes": "7d"}


def layout_settings(common: CommonSettings) -> dict[str, Any]:
    """The dynamic index settings of CARAVAN_INDEX_REPLICAS and _WAIT_FOR_ACTIVE_SHARDS."""
    replicas = common.index_replicas
    counted = (
        {"number_of_replicas": int(replicas), "auto_expand_replicas": "false"}
        if replicas.isdigit()
        else {"auto_expand_replicas": replicas}
    )
    return {**counted, "write.wait_for_active_shards": common.index_wait_for_active_shards}


async def ensure_indices(es: AsyncElasticsearch, names: IndexNames, common: CommonSettings) -> None:
    """Create templates, the versioned indices and their aliases if missing.

    An index that exists gets the fields the mapping has added since it was
    made (new fields are the one mapping change Elasticsearch takes in place;
    anything else needs `caravan reindex`). Safe to run from several processes at
    once: creation races end in "already exists", which is fine. Shards and replicas
    come from `common`; an existing index takes the new replica settings in place, a
    new shard count needs `caravan reindex`.
    """
    for alias, mapping in (
        (names.articles, articles_mapping()),
        (names.quotes, quotes_mapping()),
        (names.saved_searches, saved_searches_mapping()),
    ):
        layout = layout_settings(common) | (ARTICLE_TOMBSTONES if alias == names.articles else {})
        await es.indices.put_index_template(
            name=f"{alias}-template",
            index_patterns=[f"{alias}-v*"],
            template={
                "settings": {
                    "number_of_shards": common.index_shards,
                    "refresh_interval": "1s",
                    **layout,
                },
                "mappings": mapping,
            },
            priority=100,
        )
        if await es.indices.exists_alias(name=alias):
            await es.indices.put_settings(index=alias, settings=layout)
            try:
                await es.indices.put_mapping(index=alias, properties=mapping["properties"])
            except BadRequestError as exc:
                log.warning(
                    "live index mapping differs from this version's; "
                    "run `caravan reindex` to move to it",
                    alias=alias,
                    error=str(exc),
                )
            continue
        index = IndexNames.versioned(alias)
        try:
            await es.indices.create(index=index, aliases={alias: {"is_write_index": True}})
        except BadRequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise


async def ensure_indices_held(
    es: AsyncElasticsearch, names: IndexNames, common: CommonSettings, backoff: Backoff
) -> None:
    """`ensure_indices`, held like a write until the cluster takes it: what it refuses
    for now (a key lacking a privilege, a node away) is retried with the reason logged,
    never the end of the service; anything else (a bug, a bad mapping) is raised."""
    attempt = 0
    while True:
        try:
            await ensure_indices(es, names, common)
        except (ApiError, TransportError) as exc:
            failure = classify_request_error(exc, entries=1, size=0)
            if failure.verdict is not Verdict.HOLD:
                raise
            attempt += 1
            log.warning("indices not ensured, holding", reason=failure.reason)
            await asyncio.sleep(backoff.delay(attempt))
        else:
            return
