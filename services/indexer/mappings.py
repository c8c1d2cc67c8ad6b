"""Index templates and versioned indices behind aliases.

Readers and writers use the alias (`articles`, `quotes`); the index behind it is
versioned (`articles-v1`) so a mapping change builds a new index and swaps the
alias. Mappings use only core analysers (`standard`, `whitespace`): the minimal
Elasticsearch distribution has no analysis-common module, so no language
analysers, no `asciifolding`. Word forms and the region's two scripts are
analysed in Python instead (shared/language): title, summary and body have
stemmed (`stem.*`) and script-folded (`fold.*`) copies, made by the document
builder and indexed as the whitespace-separated tokens they are. So the mapping
is the same on every distribution.
"""

from __future__ import annotations

from typing import Any

import structlog
from elasticsearch import AsyncElasticsearch, BadRequestError

from shared.clients import has_language_analyzers
from shared.settings import CommonSettings

log = structlog.get_logger(__name__)

MAPPING_VERSION = 1


TEXT = {"type": "text", "analyzer": "standard"}
# Tokens made by shared/language.analysis: split on spaces, nothing else.
NORMALISED = {"properties": {name: {"type": "text", "analyzer": "whitespace"}
                             for name in ("title", "summary", "body")}}


def articles_mapping() -> dict[str, Any]:
    return {
        # Unknown event fields are kept in _source but not indexed: a newer
        # producer never breaks an older indexer's mapping.
        "dynamic": False,
        "properties": {
            "title": {**TEXT, "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
            "title_suggest": {"type": "completion", "analyzer": "simple"},
            "summary": TEXT,
            "body": TEXT,
            "stem": NORMALISED,
            "fold": NORMALISED,
            "url": {"type": "keyword", "index": False},
            "canonical_url": {"type": "keyword"},
            "source": {"type": "keyword"},
            "authors": {"type": "keyword"},
            "tags": {"type": "keyword"},
            "countries": {"type": "keyword"},
            "language": {"type": "keyword"},
            "published_at": {"type": "date"},
            "fetched_at": {"type": "date"},
            "occurred_at": {"type": "date"},
            "content_hash": {"type": "keyword"},
            "event_id": {"type": "keyword"},
            "version": {"type": "long"},
        },
    }


def quotes_mapping() -> dict[str, Any]:
    return {
        "dynamic": False,
        "properties": {
            "pair": {"type": "keyword"},
            "base": {"type": "keyword"},
            "quote": {"type": "keyword"},
            # The exact decimal is kept as a string; the double beside it is for
            # sorting, ranges and charts only.
            "rate": {"type": "keyword"},
            "rate_value": {"type": "double"},
            "change_pct": {"type": "keyword"},
            "change_pct_value": {"type": "double"},
            "previous_rate": {"type": "keyword"},
            "as_of": {"type": "date", "format": "strict_date"},
            "provider": {"type": "keyword"},
            "primary": {"type": "boolean"},
            "flags": {"type": "keyword"},
            "stale_after": {"type": "date", "format": "strict_date"},
            "fetched_at": {"type": "date"},
            "occurred_at": {"type": "date"},
            "event_id": {"type": "keyword"},
            "version": {"type": "long"},
        },
    }


class IndexNames:
    def __init__(self, prefix: str) -> None:
        self.articles = f"{prefix}articles"
        self.quotes = f"{prefix}quotes"

    @staticmethod
    def versioned(alias: str, version: int = MAPPING_VERSION) -> str:
        return f"{alias}-v{version}"


def layout_settings(common: CommonSettings) -> dict[str, Any]:
    """The dynamic index settings of CARAVAN_INDEX_REPLICAS and _WAIT_FOR_ACTIVE_SHARDS."""
    replicas = common.index_replicas
    counted = ({"number_of_replicas": int(replicas), "auto_expand_replicas": "false"}
               if replicas.isdigit() else {"auto_expand_replicas": replicas})
    return {**counted, "write.wait_for_active_shards": common.index_wait_for_active_shards}


async def ensure_indices(es: AsyncElasticsearch, names: IndexNames,
                         common: CommonSettings | None = None) -> bool:
    """Create templates, the versioned indices and their aliases if missing.

    An index that exists gets the fields the mapping has added since it was
    made (new fields are the one mapping change Elasticsearch takes in place;
    anything else needs `caravan reindex`). Returns whether the cluster has
    language analysers of its own, for the record: the mapping does not use them.
    Safe to run from several processes at once: creation races end
    in "already exists", which is fine. Shards and replicas come from `common`
    (else the environment); an existing index takes the new replica settings
    in place, a new shard count needs `caravan reindex`.
    """
    common = common or CommonSettings()
    layout = layout_settings(common)
    languages = await has_language_analyzers(es)
    for alias, mapping in ((names.articles, articles_mapping()),
                           (names.quotes, quotes_mapping())):
        await es.indices.put_index_template(
            name=f"{alias}-template",
            index_patterns=[f"{alias}-v*"],
            template={
                "settings": {"number_of_shards": common.index_shards,
                             "refresh_interval": "1s", **layout},
                "mappings": mapping,
            },
            priority=100,
        )
        if await es.indices.exists_alias(name=alias):
            await es.indices.put_settings(index=alias, settings=layout)
            try:
                await es.indices.put_mapping(index=alias, properties=mapping["properties"])
            except BadRequestError as exc:
                log.warning("live index mapping differs from this version's; "
                            "run `caravan reindex` to move to it", alias=alias, error=str(exc))
            continue
        index = IndexNames.versioned(alias)
        try:
            await es.indices.create(index=index, aliases={alias: {"is_write_index": True}})
        except BadRequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise
    return languages
