"""Index set-up against the real cluster: templates, aliases, in-place field additions."""

from __future__ import annotations

import pytest
from elasticsearch import AsyncElasticsearch

from services.indexer.mappings import ensure_indices
from services.indexer.reindex import reindex
from shared.clients import elasticsearch_ready
from shared.index import IndexNames, articles_mapping, quotes_mapping
from shared.settings import Settings
from tests.conftest import Namespace
from tests.integration.conftest import article

pytestmark = pytest.mark.integration


async def test_a_live_index_gains_fields_added_since_it_was_made(
    es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    names = IndexNames(namespace.index_prefix)
    older = quotes_mapping()
    del older["properties"]["flags"]
    await es.indices.create(
        index=IndexNames.versioned(names.quotes),
        mappings=older,
        aliases={names.quotes: {"is_write_index": True}},
    )

    await ensure_indices(es, names, settings.common)

    mapping = await es.indices.get_mapping(index=names.quotes)
    (index_mapping,) = mapping.values()
    assert index_mapping["mappings"]["properties"]["flags"] == {"type": "keyword"}
    assert await es.indices.exists_alias(name=names.articles)


async def test_a_conflicting_live_mapping_is_reported_not_fatal(
    es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    names = IndexNames(namespace.index_prefix)
    await es.indices.create(
        index=IndexNames.versioned(names.quotes),
        mappings={"properties": {"rate": {"type": "long"}}},
        aliases={names.quotes: {"is_write_index": True}},
    )

    await ensure_indices(es, names, settings.common)  # does not raise

    mapping = await es.indices.get_mapping(index=names.quotes)
    (index_mapping,) = mapping.values()
    assert index_mapping["mappings"]["properties"]["rate"] == {"type": "long"}


async def test_a_live_articles_index_gains_the_normalised_fields_and_reindex_fills_them(
    es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    names = IndexNames(namespace.index_prefix)
    older = articles_mapping()
    del older["properties"]["stem"], older["properties"]["fold"]
    await es.indices.create(
        index=IndexNames.versioned(names.articles),
        mappings=older,
        aliases={names.articles: {"is_write_index": True}},
    )
    stored = article(1, title="Ўзбекистон банки").model_dump(mode="json")
    await es.index(index=names.articles, id="a1", document=stored, refresh=True)

    await ensure_indices(es, names, settings.common)
    mapping = await es.indices.get_mapping(index=names.articles)
    (index_mapping,) = mapping.values()
    assert index_mapping["mappings"]["properties"]["fold"]["properties"]["title"] == {
        "type": "text",
        "analyzer": "whitespace",
    }

    await reindex(es, names, names.articles, settings.common)
    await es.indices.refresh(index=names.articles)
    found = await es.search(index=names.articles, query={"match": {"fold.title": "ozbekiston"}})
    assert [hit["_id"] for hit in found["hits"]["hits"]] == ["a1"]


async def test_readiness_looks_at_caravans_indices_not_another_teams(
    es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    names = IndexNames(namespace.index_prefix)
    assert await elasticsearch_ready(es, names.owned)  # none made yet: nothing to wait for
    await ensure_indices(es, names, settings.common)
    # Another team's index, red: its shard may live on no node there is.
    await es.indices.create(
        index=f"{namespace.index_prefix}other-team",
        settings={"index.routing.allocation.require._name": "nowhere", "number_of_replicas": 0},
        wait_for_active_shards="0",
    )
    assert await elasticsearch_ready(es, names.owned)
    assert not await elasticsearch_ready(es)  # the whole cluster is red
