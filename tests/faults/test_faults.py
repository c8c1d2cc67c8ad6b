"""Faults against the real Redis and Elasticsearch, with the indexer as its own process.

Each test ends by checking that every published event is in the index exactly
once (the ids, counted with duplicates) and nothing else is.
"""

from __future__ import annotations

import signal
import statistics
import time

import pytest
from elasticsearch import Elasticsearch

from tests.faults.conftest import Fixture, Servers, articles, rss_kib
from tests.waiting import wait_for

pytestmark = pytest.mark.faults


def _expected(*batches: list[str]) -> list[str]:
    return sorted(key for batch in batches for key in batch)


def test_kill_9_mid_batch_then_another_indexer_delivers_everything(world: Fixture) -> None:
    events = articles(6000)
    world.publish(events)
    first = world.start_indexer("first", CARAVAN_INDEXER_BATCH_SIZE="100")
    # Kill it while it holds entries it has not acknowledged.
    wait_for(lambda: world.count() > 0 and world.pending() > 0, 60, "indexing to start")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert world.count() < len(events), "killed too late to prove anything"
    assert world.pending() > 0

    world.start_indexer("second", CARAVAN_INDEXER_BATCH_SIZE="500")
    wait_for(
        lambda: world.count() == len(events) and world.pending() == 0,
        120,
        "the second indexer to catch up",
    )

    assert world.indexed_ids() == _expected([e.idempotency_key for e in events])
    assert world.dead_letters() == []


def test_elasticsearch_down_for_30s_under_load_loses_nothing_and_holds_memory(
    world: Fixture, servers: Servers
) -> None:
    before = articles(1000, prefix="before")
    during = articles(15_000, body_bytes=8000, prefix="during")
    indexer = world.start_indexer("only", CARAVAN_INDEXER_BATCH_SIZE="100")
    world.publish(before)
    wait_for(lambda: world.count() == len(before), 60, "the first events")
    baseline = rss_kib(indexer.pid)

    servers.elasticsearch("stop")
    try:
        world.publish(during)  # ~124 MB waiting, while nothing can be written
        first_half: list[int] = []
        second_half: list[int] = []
        halfway, outage_ends = time.monotonic() + 15, time.monotonic() + 30
        while time.monotonic() < outage_ends:
            (first_half if time.monotonic() < halfway else second_half).append(rss_kib(indexer.pid))
            assert indexer.poll() is None
            time.sleep(0.5)
    finally:
        servers.elasticsearch("start")

    wait_for(
        lambda: world.count() == len(before) + len(during) and world.pending() == 0,
        240,
        "the backlog to drain",
    )
    assert world.indexed_ids() == _expected([e.idempotency_key for e in before + during])
    assert world.dead_letters() == []
    # The backlog waited in Redis. The indexer holds its in-flight batches (with their
    # derived search fields, about three times the entry) and nothing more: it does not
    # grow while the outage lasts, and its working set is well below the backlog.
    # Growth is a rising level, so the halves compare by median: a sample caught while
    # a retry's request body is alive (a few MB, freed when the attempt fails) is a
    # spike, not growth; the peak bound below covers spikes.
    growth = statistics.median(second_half) - statistics.median(first_half)
    assert growth < 4 * 1024, f"the indexer kept growing while holding: {growth} KiB"
    peak = max(first_half + second_half)
    assert peak - baseline < 100 * 1024, f"indexer grew {(peak - baseline) // 1024} MiB"


def test_replaying_the_stream_twice_neither_duplicates_nor_rolls_back(world: Fixture) -> None:
    old = articles(500, version_day=1)
    new = articles(500, version_day=2)
    world.publish(new)
    world.start_indexer("only")
    wait_for(lambda: world.count() == 500 and world.pending() == 0, 60, "the first pass")

    world.publish(old + new)  # a replay that carries older versions too...
    world.publish(old + new)  # ...twice
    wait_for(
        lambda: (
            world.pending() == 0
            and world.redis().xlen(world.articles_stream) == 2500
            and _lag(world) == 0
        ),
        60,
        "the replays",
    )

    assert world.indexed_ids() == _expected([e.idempotency_key for e in new])
    es: Elasticsearch = world.es()
    versions = {
        hit["_version"]
        for hit in es.search(index=world.alias, size=500, version=True)["hits"]["hits"]
    }
    assert versions == {new[0].version}
    assert world.dead_letters() == []


def _lag(world: Fixture) -> int:
    (group,) = world.redis().xinfo_groups(world.articles_stream)
    return int(group["lag"] or 0)


def test_redis_restart_with_aof_loses_nothing(world: Fixture, servers: Servers) -> None:
    first = articles(2000, prefix="first")
    second = articles(2000, prefix="second")
    world.start_indexer("only", CARAVAN_INDEXER_BATCH_SIZE="100")
    world.publish(first)
    wait_for(lambda: world.count() > 0, 60, "indexing to start")

    servers.redis("restart")  # a clean shutdown flushes the AOF; the indexer must reconnect
    world.publish(second)
    wait_for(
        lambda: world.count() == 4000 and world.pending() == 0, 120, "everything after the restart"
    )

    assert world.indexed_ids() == _expected([e.idempotency_key for e in first + second])
    assert world.dead_letters() == []
