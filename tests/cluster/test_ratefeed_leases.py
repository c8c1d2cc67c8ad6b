"""Two rate-feed processes, on Redis and on Redis Cluster: one polls the providers,
the other stands by and takes over within the lease time when the first is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import redis
from redis.cluster import RedisCluster

from tests.conftest import REALDATA, REPO
from tests.loopback import LoopbackServer, static
from tests.processes import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.cluster

INTERVAL = 1.0
LEASE = 3.0


@pytest.fixture
def bank(tmp_path: Path) -> Iterator[tuple[LoopbackServer, Path]]:
    server = LoopbackServer()
    server.routes["/cbr.xml"] = static(
        (REALDATA / "cbr-xml-daily-2023-09-27.xml").read_bytes(), "application/xml"
    )
    server.start()
    providers = tmp_path / "rates.toml"
    providers.write_text(
        f'[[providers]]\nname = "cbr"\nkind = "cbr"\n'
        f'url = "{server.url("/cbr.xml")}"\ntimezone = "Europe/Moscow"\n'
        f"interval = {INTERVAL}\n"
    )
    yield server, providers
    server.stop()


@pytest.fixture(params=["redis", "redis-cluster"])
def backend(request: pytest.FixtureRequest) -> tuple[str, bool]:
    """Redis's URL and whether it is a Redis Cluster."""
    cluster = request.param == "redis-cluster"
    return (
        request.getfixturevalue("redis_cluster") if cluster else os.environ["REDIS_URL"]
    ), cluster


def test_one_replica_polls_and_another_takes_over_when_it_dies(
    bank: tuple[LoopbackServer, Path], backend: tuple[str, bool], tmp_path: Path
) -> None:
    server, providers = bank
    redis_url, cluster = backend
    token = uuid4().hex[:10]
    # In a Redis Cluster every key of the deployment shares one hash tag.
    prefix = f"{{leases-{token}}}:" if cluster else f"leases-{token}:"
    client = RedisCluster.from_url(redis_url) if cluster else redis.Redis.from_url(redis_url)
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str) -> None:
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "REDIS_CLUSTER": str(cluster).lower(),
            "CARAVAN_STREAM_PREFIX": prefix,
            "CARAVAN_RATEFEED_PROVIDERS": str(providers),
            "CARAVAN_RATEFEED_LEASE_SECONDS": str(LEASE),
            "CARAVAN_RATEFEED_HOST_DELAY": "0",
            "CARAVAN_FETCH_ALLOW": "127.0.0.1",
            "CARAVAN_USER_AGENT": f"replica-{name}",
            "CARAVAN_HEALTH_PORT": str(free_port()),
            "CARAVAN_LOG_FORMAT": "console",
        }
        log = (tmp_path / f"ratefeed-{name}.log").open("wb")
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "services.ratefeed"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def pollers(since: float) -> list[str]:
        return [h.headers.get("user-agent", "") for h in list(server.hits) if h.at >= since]

    try:
        start("a")
        wait_for(lambda: "replica-a" in pollers(0), 60, "a to poll")
        start("b")
        # b is up (it talked to Redis) while a keeps polling alone.
        wait_for(lambda: client.zcard(f"{prefix}lease:members:ratefeed") == 2, 60, "b to join")
        joined = time.monotonic()
        wait_for(lambda: pollers(joined).count("replica-a") >= 3, 60, "a to poll again")
        assert "replica-b" not in pollers(0)

        processes["a"].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: "replica-b" in pollers(killed), 60, "b to take over")
        taken_over_in = next(h.at for h in list(server.hits) if h.at >= killed) - killed
        assert taken_over_in <= LEASE * 2
        assert set(pollers(killed)) == {"replica-b"}
        print(f"rate feed taken over in {taken_over_in:.1f} s")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
