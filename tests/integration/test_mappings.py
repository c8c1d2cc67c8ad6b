"""Index set-up against the real cluster: templates, aliases, in-place field additions."""

from __future__ import annotations

import pytest
from elasticsearch import AsyncElasticsearch

from services.indexer.mappings import IndexNames, ensure_indices, quotes_mapping
from tests.conftest import Namespace

pytestmark = pytest.mark.integration


async def test_a_live_index_gains_fields_added_since_it_was_made(
    es: AsyncElasticsearch, namespace: Namespace
) -> None:
    names = IndexNames(namespace.index_prefix)
    older = quotes_mapping()
    del older["properties"]["flags"]
    await es.indices.create(index=IndexNames.versioned(names.quotes), mappings=older,
                            aliases={names.quotes: {"is_write_index": True}})

    languages = await ensure_indices(es, names)

    mapping = await es.indices.get_mapping(index=names.quotes)
    (index_mapping,) = mapping.values()
    assert index_mapping["mappings"]["properties"]["flags"] == {"type": "keyword"}
    assert languages is False  # the local distribution has no language analysers
    assert await es.indices.exists_alias(name=names.articles)


async def test_a_conflicting_live_mapping_is_reported_not_fatal(
    es: AsyncElasticsearch, namespace: Namespace
) -> None:
    names = IndexNames(namespace.index_prefix)
    await es.indices.create(index=IndexNames.versioned(names.quotes),
                            mappings={"properties": {"rate": {"type": "long"}}},
                            aliases={names.quotes: {"is_write_index": True}})

    await ensure_indices(es, names)  # does not raise

    mapping = await es.indices.get_mapping(index=names.quotes)
    (index_mapping,) = mapping.values()
    assert index_mapping["mappings"]["properties"]["rate"] == {"type": "long"}
