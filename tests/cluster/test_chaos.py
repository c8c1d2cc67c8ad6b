"""A short seeded chaos run on the clustered topology, as `make chaos` runs longer ones.

Faults drawn from the seed (tests/chaos/schedule.py) hit the service replicas, the
Redis primary of the deployment's slot, the Elasticsearch nodes and the links to
them, several at once, while the sources change; the verdict comes from the
history and the final state (tests/chaos/checker.py). CHAOS_SEED replays a run.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.chaos.run import TOXIPROXY_PORT, Chaos, Plan
from tests.cluster.conftest import EsCluster
from tests.faults.conftest import SCRIPTS
from tests.faults.proxy import Toxiproxy

pytestmark = pytest.mark.cluster

# A seed whose two minutes draw every kind of fault at least once.
SEED = 20261484


@pytest.fixture(scope="module")
def toxiproxy() -> Iterator[Toxiproxy]:
    script = str(SCRIPTS / "toxiproxy.sh")
    subprocess.run([script, "start", "chaos", str(TOXIPROXY_PORT)], check=True)
    client = Toxiproxy(f"http://127.0.0.1:{TOXIPROXY_PORT}")
    yield client
    client.close()
    subprocess.run([script, "stop", "chaos", str(TOXIPROXY_PORT)], check=True)


def test_a_seeded_fault_schedule_loses_nothing_doubles_nothing_and_search_stays_up(
    es_cluster: EsCluster, redis_cluster: str, toxiproxy: Toxiproxy, tmp_path: Path
) -> None:
    plan = Plan(seed=int(os.environ.get("CHAOS_SEED") or SEED), seconds=150)
    chaos = Chaos(plan, toxiproxy, tmp_path)
    try:
        result = chaos.run()
    finally:
        chaos.close()

    assert len(result.faults) >= 10
    assert result.verdict.ok, asdict(result.verdict)
    assert result.facts["ticker_has_last_day"]
    # Search answered throughout: a node paused with its shards, or a black-holed link,
    # costs some probes their 2 s budget, not the service.
    assert result.availability["all"]["available"] >= 0.9, result.availability
    assert result.availability["none"]["available"] >= 0.9, result.availability
