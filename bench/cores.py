"""Elasticsearch on cores of its own while a bench runs, as on hosts of its own.

Deployed, the indexer and the query service never run on the Elasticsearch nodes.
On one small machine they share its cores: every CPU second a measured service
spends is then taken from the cluster, and a ratio "service ÷ Elasticsearch
directly" charges the service's work twice, once as its own cost and once as the
cluster's lost capacity. Pinning Elasticsearch (every JVM thread) to half of the
cores and the bench, with the processes it starts and the Redis it uses, to the
other half gives both sides of a comparison the same cluster, as production does.
`--cores shared` keeps everything on every core, for the co-located figure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Split:
    cluster: frozenset[int]
    measured: frozenset[int]

    def describe(self) -> dict[str, list[int]]:
        return {"elasticsearch": sorted(self.cluster), "measured": sorted(self.measured)}


def split(cores: set[int]) -> Split:
    """The first half of the cores for the cluster, the rest for the measured side."""
    ordered = sorted(cores)
    if len(ordered) < 2:
        msg = "separate cores need at least two; run with --cores shared"
        raise SystemExit(msg)
    half = len(ordered) // 2
    return Split(frozenset(ordered[:half]), frozenset(ordered[half:]))


def pin(pid: int, cores: frozenset[int]) -> None:
    """Every thread of a process onto these cores (threads made later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(task.name), cores)


async def elasticsearch_pids(es: AsyncElasticsearch) -> list[int]:
    """The pids of the Elasticsearch nodes the client talks to: they must be local."""
    hosts = {node.config.host for node in es.transport.node_pool.all()}
    if not hosts <= LOOPBACK:
        msg = "separate cores need Elasticsearch on this machine; run with --cores shared"
        raise SystemExit(msg)
    info = await es.nodes.info(metric="process")
    return [int(node["process"]["id"]) for node in info["nodes"].values()]


async def redis_pid(redis: Redis) -> int:
    return int((await redis.info("server"))["process_id"])


@contextlib.contextmanager
def apart(cluster: list[int], measured: list[int], cores: Split) -> Iterator[None]:
    """`cluster` on `cores.cluster`; this process (so its children) and `measured` on the rest.

    Every core is given back to each of them on the way out.
    """
    mine = [os.getpid(), *measured]
    try:
        for pid in cluster:
            pin(pid, cores.cluster)
        for pid in mine:
            pin(pid, cores.measured)
        yield
    finally:
        for pid in [*cluster, *mine]:
            with contextlib.suppress(FileNotFoundError):  # a process that ended
                pin(pid, cores.cluster | cores.measured)


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cores",
        choices=("separate", "shared"),
        default="separate",
        help="Elasticsearch on half of the cores and the measured side on "
        "the other half, as on hosts of their own (default), or all "
        "on every core",
    )


@contextlib.asynccontextmanager
async def placed(
    mode: str, es: AsyncElasticsearch, redis: Redis | None = None
) -> AsyncIterator[dict[str, object]]:
    """Run the body with the placement `mode` names; yields it, for the results."""
    if mode == "shared":
        yield {"cores": "shared"}
        return
    cores = split(os.sched_getaffinity(0))
    measured = [await redis_pid(redis)] if redis is not None else []
    with apart(await elasticsearch_pids(es), measured, cores):
        yield {"cores": "separate", **cores.describe()}
