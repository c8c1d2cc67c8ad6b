"""Redis Cluster (3 primaries, 3 replicas) loses the primary of the streams mid-burst.

The indexers (two processes, REDIS_CLUSTER=true) follow the promoted replica by
themselves. The test publishes as a careful producer does: each batch of XADDs
is confirmed with WAIT (one replica has it) and sent again when it was not,
so a failover costs duplicate entries at most, which the index absorbs by _id.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from elasticsearch import Elasticsearch
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from shared.events import ArticleEvent
from tests.cluster.conftest import REDIS_PORT as PORT
from tests.faults.conftest import SCRIPTS, articles, report
from tests.processes import free_port, stop_processes
from tests.waiting import wait_for

pytestmark = pytest.mark.cluster


class Burst:
    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.workdir = tmp_path
        self.token = uuid4().hex[:10]
        self.prefix = f"{{clu-{self.token}}}:"  # one hash tag: one slot for every key
        self.stream = f"{self.prefix}articles"
        self.alias = f"clu-{self.token}-articles"
        self.client = RedisCluster.from_url(url)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.confirmed = 0
        self.retried = 0

    def primary_port(self) -> int:
        self.client.nodes_manager.initialize()
        return int(self.client.get_node_from_key(self.stream).port)  # type: ignore[no-untyped-call]

    def publish(self, events: list[ArticleEvent], batch: int = 200) -> None:
        """XADD in batches on the slot's primary, each confirmed by WAIT 1; an
        unconfirmed or failed batch is sent again (to the new primary, after a failover)."""
        for start in range(0, len(events), batch):
            chunk = events[start : start + batch]
            while not self._confirmed(chunk):
                self.retried += 1
            self.confirmed += len(chunk)

    def _confirmed(self, chunk: list[ArticleEvent]) -> bool:
        try:
            node = self.client.get_node_from_key(self.stream)  # type: ignore[no-untyped-call]
            connection = self.client.get_redis_connection(node)
            with connection.pipeline(transaction=False) as pipe:
                for event in chunk:
                    pipe.xadd(self.stream, {"__data__": event.model_dump_json()})
                pipe.execute_command("WAIT", 1, 2000)  # type: ignore[no-untyped-call]
                *_, replicas = pipe.execute()
            return int(replicas) >= 1
        except (RedisError, RedisClusterException):
            self.client.nodes_manager.initialize()
            return False

    def start_indexer(self, name: str) -> None:
        # Every node as a seed: the one named first may be the one that dies.
        seeds = ",".join(f"redis://127.0.0.1:{PORT + n}/0" for n in range(6))
        env = {
            **os.environ,
            "REDIS_URL": seeds,
            "REDIS_CLUSTER": "true",
            "CARAVAN_STREAM_PREFIX": self.prefix,
            "CARAVAN_INDEX_PREFIX": f"clu-{self.token}-",
            "CARAVAN_INDEXER_CONSUMER": name,
            "CARAVAN_HEALTH_PORT": str(free_port()),
            "CARAVAN_INDEXER_BATCH_SIZE": "100",
            "CARAVAN_INDEXER_BLOCK_MS": "100",
            "CARAVAN_INDEXER_CLAIM_IDLE_MS": "1000",
            "CARAVAN_INDEXER_RETRY_BASE_DELAY": "0.05",
            "CARAVAN_INDEXER_RETRY_MAX_DELAY": "1",
            "CARAVAN_LOG_FORMAT": "console",
        }
        log = (self.workdir / f"indexer-{name}.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "services.indexer"],
                cwd=Path(__file__).parents[2],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    def es(self) -> Elasticsearch:
        return Elasticsearch(os.environ["ELASTICSEARCH_URL"], request_timeout=30)

    def count(self) -> int:
        es = self.es()
        if not es.indices.exists_alias(name=self.alias):
            return 0
        es.indices.refresh(index=self.alias)
        return int(es.count(index=self.alias)["count"])

    def pending(self) -> int:
        try:
            return int(self.client.xpending(self.stream, "indexer")["pending"])
        except RedisError:
            return -1

    def indexed_ids(self) -> list[str]:
        es = self.es()
        es.indices.refresh(index=self.alias)
        hits = es.search(index=self.alias, size=10_000, source=False)["hits"]["hits"]
        return sorted(hit["_id"] for hit in hits)


@pytest.fixture
def burst(redis_cluster: str, tmp_path: Path) -> Iterator[Burst]:
    fixture = Burst(redis_cluster, tmp_path)
    yield fixture
    stop_processes(fixture.processes)
    keys = list(fixture.client.scan_iter(match=f"{fixture.prefix}*"))
    if keys:
        fixture.client.delete(*keys)
    fixture.client.close()
    es = fixture.es()
    indices = es.indices.get(index=f"clu-{fixture.token}-*", allow_no_indices=True)
    if indices:
        es.indices.delete(index=",".join(indices))


def test_the_streams_primary_killed_mid_burst_loses_nothing(burst: Burst) -> None:
    # The first burst large enough that the indexers are still at it when the kill
    # lands; both within the 10,000 hits indexed_ids reads.
    first, second = articles(8000, prefix="first"), articles(2000, prefix="second")
    for name in ("a", "b"):
        burst.start_indexer(name)
    victim = burst.primary_port()
    node = str(victim - PORT + 1)
    # Killed as soon as indexing starts, the first burst maybe still being published:
    # waiting for the whole of it left the indexers time to finish before the kill.
    publisher = threading.Thread(target=burst.publish, args=(first,))
    publisher.start()
    wait_for(lambda: burst.count() > 0, 120, "indexing to start")

    script = str(SCRIPTS / "redis-cluster.sh")
    subprocess.run([script, "kill-node", "cluster", str(PORT), node], check=True)
    killed_at = time.monotonic()
    assert burst.count() < len(first), "killed too late to prove anything"
    promoted: list[float] = []

    def replace_the_dead_node() -> None:
        # What a StatefulSet does: the node comes back, now as the promoted one's
        # replica, so WAIT can confirm again (until then every batch is resent).
        wait_for(lambda: burst.primary_port() != victim, 60, "a replica to be promoted")
        promoted.append(time.monotonic() - killed_at)
        subprocess.run([script, "start-node", "cluster", str(PORT), node], check=True)

    restarter = threading.Thread(target=replace_the_dead_node)
    restarter.start()
    publisher.join()
    burst.publish(second)  # blocks through the failover: unconfirmed batches are resent
    restarter.join()
    wait_for(
        lambda: burst.count() == len(first) + len(second) and burst.pending() == 0,
        180,
        "the indexers to finish on the promoted replica",
    )
    caught_up_in = time.monotonic() - killed_at

    expected = sorted(e.idempotency_key for e in first + second)
    assert burst.indexed_ids() == expected
    assert all(process.poll() is None for process in burst.processes)
    dead = burst.client.xlen(f"{burst.prefix}deadletters")
    assert dead == 0
    report(
        f"redis cluster: streams' primary killed mid-burst (promoted in {promoted[0]:.1f} s,"
        f" {burst.retried} batches of 200 retried unconfirmed)",
        sent=len(expected),
        indexed=len(expected),
        dead_lettered=0,
        duplicated=0,
        recovered_in=caught_up_in,
    )
