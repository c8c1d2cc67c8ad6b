"""Shards, replicas and write consistency come from settings, in templates and in reindex."""

from __future__ import annotations

import pytest
from elasticsearch import AsyncElasticsearch

from services.indexer.mappings import ensure_indices
from services.indexer.reindex import reindex
from shared.index import IndexNames
from shared.settings import CommonSettings, Settings
from tests.conftest import Namespace

pytestmark = pytest.mark.integration


async def _layout(es: AsyncElasticsearch, alias: str) -> dict[str, str]:
    answer = await es.indices.get_settings(index=alias, flat_settings=True)
    (settings,) = answer.values()
    return {key.removeprefix("index."): value for key, value in settings["settings"].items()}


async def test_defaults_auto_expand_one_replica_on_one_shard(
    es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    names = IndexNames(namespace.index_prefix)
    await ensure_indices(es, names, settings.common)

    layout = await _layout(es, names.articles)
    assert layout["number_of_shards"] == "1"
    assert layout["auto_expand_replicas"] == "0-1"
    assert layout["write.wait_for_active_shards"] == "1"
    # A superseded article's delete outlives a redelivery of its older events (60 s by
    # default): the old copy is refused as stale, not indexed again.
    assert layout["gc_deletes"] == "7d"
    assert "gc_deletes" not in await _layout(es, names.quotes)
    # One node: the replica range expands to none, so the index is green.
    health = await es.cluster.health(index=names.articles)
    assert health["status"] == "green"


async def test_settings_reach_the_template_a_live_index_and_a_reindex(
    es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    names = IndexNames(namespace.index_prefix)
    await ensure_indices(es, names, settings.common)

    # Replicas change in place on the live index; shards only in the next version.
    common = CommonSettings(
        index_prefix=namespace.index_prefix,
        index_shards=3,
        index_replicas="0",
        index_wait_for_active_shards="all",
    )
    await ensure_indices(es, names, common)
    live = await _layout(es, names.quotes)
    assert live["number_of_shards"] == "1"
    assert live["number_of_replicas"] == "0"
    assert live["auto_expand_replicas"] == "false"
    assert live["write.wait_for_active_shards"] == "all"

    result = await reindex(es, names, names.quotes, common)
    rebuilt = await _layout(es, result.new_index)
    assert rebuilt["number_of_shards"] == "3"
    assert rebuilt["number_of_replicas"] == "0"
    assert rebuilt["write.wait_for_active_shards"] == "all"
