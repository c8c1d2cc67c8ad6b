"""Cluster tests run against clusters of their own, which they start, wound and stop.

Elasticsearch: three nodes of the local distribution (deploy/local/es-cluster.sh,
instance "cluster", HTTP on 9311-9313, transport on 9411-9413). Redis Cluster: six
nodes of Debian's redis-server (deploy/local/redis-cluster.sh, 7311-7316). Other
tests use the test Redis of deploy/local/test.sh (REDIS_URL).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.faults.conftest import SCRIPTS, Fixture, Servers
from tests.processes import stop_processes

ES_PORT = 9311
ES_NODES = 3
REDIS_PORT = 7311


@dataclass(frozen=True)
class EsCluster:
    port: int = ES_PORT
    nodes: int = ES_NODES

    def url(self, node: int) -> str:
        return f"http://127.0.0.1:{self.port + node - 1}"

    @property
    def urls(self) -> str:
        """Every node, as the services are given them (ELASTICSEARCH_URL)."""
        return ",".join(self.url(node) for node in range(1, self.nodes + 1))

    def script(self, action: str, arg: int) -> None:
        subprocess.run(
            [str(SCRIPTS / "es-cluster.sh"), action, "cluster", str(self.port), str(arg)],
            check=True,
        )

    def kill_node(self, node: int) -> None:
        self.script("kill-node", node)

    def start_node(self, node: int) -> None:
        self.script("start-node", node)

    def client(self, node: int = 1) -> Elasticsearch:
        return Elasticsearch(self.url(node), request_timeout=30)

    def health(self, node: int = 1) -> dict[str, object]:
        return dict(self.client(node).cluster.health())


@pytest.fixture(scope="package")
def es_cluster() -> Iterator[EsCluster]:
    cluster = EsCluster()
    cluster.script("start", cluster.nodes)
    yield cluster
    cluster.script("stop", cluster.nodes)


@pytest.fixture
def cluster_world(es_cluster: EsCluster, tmp_path: Path) -> Iterator[Fixture]:
    """The fault tests' world (namespace, indexer processes, probes) on the cluster.

    Its own client talks to node 1, which the tests never stop; the indexers get
    every node.
    """
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.fail("REDIS_URL is not set: run the suite with `make test`")
    world = Fixture(Servers(redis_url=redis_url, es_url=es_cluster.url(1)), tmp_path)
    yield world
    stop_processes(world.processes)
    client = world.redis()
    keys = list(client.scan_iter(match=f"faults-{world.token}:*"))
    if keys:
        client.delete(*keys)
    es: Elasticsearch = world.es()
    indices = es.indices.get(index=f"faults-{world.token}-*", allow_no_indices=True)
    if indices:
        es.indices.delete(index=",".join(indices))


@pytest.fixture(scope="package")
def redis_cluster() -> Iterator[str]:
    """The Redis Cluster's URL (any node; the client discovers the others)."""
    script = str(SCRIPTS / "redis-cluster.sh")
    subprocess.run([script, "start", "cluster", str(REDIS_PORT)], check=True)
    yield f"redis://127.0.0.1:{REDIS_PORT}/0"
    subprocess.run([script, "stop", "cluster", str(REDIS_PORT)], check=True)
