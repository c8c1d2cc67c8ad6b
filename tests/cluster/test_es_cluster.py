"""A three-node Elasticsearch cluster loses a node, and indexers lose a replica, mid-burst.

Each test ends by checking that every published event is in the index exactly
once (the ids, counted with duplicates) and that nothing was dead-lettered.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
import redis

from tests.cluster.conftest import EsCluster
from tests.faults.conftest import Fixture, articles, report
from tests.waiting import wait_for

pytestmark = pytest.mark.cluster

# Three primaries, so every node holds one and losing any node loses a primary
# (its replica elsewhere is promoted); the default replica range gives one replica.
LAYOUT = {"CARAVAN_INDEX_SHARDS": "3", "CARAVAN_INDEXER_BATCH_SIZE": "100"}


def _health(cluster: EsCluster) -> str:
    return str(cluster.health(1)["status"])


def _search_answers(world: Fixture) -> dict[str, Any]:
    """One search through node 1; what it says about its shards and hits."""
    answer = world.es().search(
        index=world.alias, query={"match": {"title": "article"}}, size=1, track_total_hits=True
    )
    return {"failed": answer["_shards"]["failed"], "total": answer["hits"]["total"]["value"]}


def _pending_of(world: Fixture) -> dict[str, int]:
    """Entries each indexer of the group owns ({} before the group exists)."""
    try:
        consumers = world.redis().xinfo_consumers(world.articles_stream, "indexer")
    except redis.ResponseError:
        return {}
    return {c["name"].decode(): int(c["pending"]) for c in consumers}


def test_a_data_node_lost_mid_burst_costs_nothing_and_searches_go_on(
    cluster_world: Fixture, es_cluster: EsCluster
) -> None:
    world = cluster_world
    first, second = articles(3000, prefix="first"), articles(3000, prefix="second")
    for name in ("a", "b"):
        world.start_indexer(name, ELASTICSEARCH_URL=es_cluster.urls, **LAYOUT)
    world.publish(first)
    wait_for(lambda: world.count() > 0 and world.pending() > 0, 120, "indexing to start")
    wait_for(lambda: _health(es_cluster) == "green", 120, "the index to have its replicas")

    lost = 3
    es_cluster.kill_node(lost)
    killed_at = time.monotonic()
    try:
        # Mid-burst by construction: the second half arrives on the wounded cluster.
        world.publish(second)
        wait_for(lambda: _health(es_cluster) == "yellow", 120, "the cluster to be yellow")
        # Every primary is active again (replicas promoted): searches see all shards.
        while world.count() < len(first) + len(second) or world.pending() > 0:
            seen = _search_answers(world)
            assert seen["failed"] == 0
            assert _health(es_cluster) in {"yellow", "green"}
        caught_up_in = time.monotonic() - killed_at
    finally:
        es_cluster.start_node(lost)
    wait_for(lambda: _health(es_cluster) == "green", 300, "the cluster to be green again")
    green_in = time.monotonic() - killed_at

    expected = sorted(e.idempotency_key for e in first + second)
    assert world.indexed_ids() == expected
    assert world.dead_letters() == []
    report(
        "es data node killed mid-burst (3 nodes, 3 shards, 1 replica, 2 indexers)",
        sent=len(expected),
        indexed=len(expected),
        dead_lettered=0,
        duplicated=0,
        recovered_in=caught_up_in,
    )
    report(
        "es node back: green again after",
        sent=0,
        indexed=0,
        dead_lettered=0,
        duplicated=0,
        recovered_in=green_in,
    )


def test_an_indexer_killed_mid_burst_leaves_its_work_to_the_others(
    cluster_world: Fixture, es_cluster: EsCluster
) -> None:
    world = cluster_world
    first, second = articles(3000, prefix="first"), articles(3000, prefix="second")
    indexers = {
        name: world.start_indexer(name, ELASTICSEARCH_URL=es_cluster.urls, **LAYOUT)
        for name in ("a", "b", "c")
    }
    world.publish(first)
    # Killed while it owns entries it has not acknowledged.
    wait_for(lambda: _pending_of(world).get("b", 0) > 0, 120, "indexer b to hold entries")
    indexers["b"].send_signal(signal.SIGKILL)
    indexers["b"].wait()
    world.publish(second)
    wait_for(
        lambda: world.count() == len(first) + len(second) and world.pending() == 0,
        180,
        "the other indexers to finish b's work",
    )

    expected = sorted(e.idempotency_key for e in first + second)
    assert world.indexed_ids() == expected
    assert world.dead_letters() == []
    assert set(_pending_of(world).values()) == {0}
