"""Indexer throughput, publish to searchable, against the best raw bulk strategy.

    python -m bench.indexer --events 30000 [--profile] [--pipeline-in-flight 1,2,4]
                            [--rounds 3] [--publish before|during] [--cores separate|shared]

Every side writes the same documents (bench/corpus.py: the real sample feeds'
vocabulary, varied) into indices made from the same template, on the same
cluster, in the same run:

- raw: the documents serialized once, before the clock starts, into NDJSON
  bulk bodies (by count 500 and 1,000, and by bytes, ~5 MiB), sent with 1, 2,
  4 and 8 requests in flight: what a careful client gets out of the cluster;
- pipeline: the events waiting in the articles stream (or, with `--publish
  during`, published while it runs), the indexer's consumer as its own process
  (bench/indexer_process.py) reads, derives the search fields, writes and
  acknowledges; the clock starts when it has made its group and stops when the
  group has acknowledged everything and the count is searchable, as the raw
  side's clock stops when its last bulk returned and the count is searchable.

After the sweep of both, `--rounds` alternating runs of the best raw strategy
and the pipeline's first setting give the ratio (median ÷ median), so that the
machine's drifting load falls on both. Reports the documents per second of
each, the indexer's CPU seconds per 1,000 documents and its peak RSS, and, when
Elasticsearch runs on this machine, the node's CPU seconds per 1,000 documents over
the same pipeline run and the indexer's as a share of it. Every run, raw or
pipeline, also reports the whole machine's CPU seconds per 1,000 documents and the
cores it kept busy (and the node's, when local): co-located, where both sides keep
the machine about as busy, the ratio follows the raw side's machine CPU over the
pipeline's.
`--profile` runs the pipeline once more (untimed) with py-spy sampling the
indexer and writes the top of the profile to
bench/results/indexer-profile-<time>.txt. Elasticsearch and the measured side
run on separate cores unless `--cores shared` (bench/cores.py).
Needs REDIS_URL and ELASTICSEARCH_URL (`make bench-indexer` starts local ones).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from bench import cores
from bench.corpus import generate, sample_articles
from bench.namespace import drop_namespace
from bench.ports import free_port
from bench.proc import machine_ticks, process_cpu_seconds
from bench.publish import publish
from services.indexer.documents import BulkAction, article_action
from services.indexer.mappings import ensure_indices
from shared.clients import make_elasticsearch, make_redis
from shared.events import ArticleEvent
from shared.index import IndexNames
from shared.settings import CommonSettings, ElasticsearchSettings, RedisSettings

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
IN_FLIGHT = (1, 2, 4, 8)
BY_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Strategy:
    in_flight: int
    count: int | None
    """Documents per bulk body, or None to cut bodies by bytes."""

    @property
    def name(self) -> str:
        batch = f"{self.count} docs" if self.count else f"{BY_BYTES // 2**20} MiB"
        return f"{self.in_flight} in flight, {batch}"


STRATEGIES = [Strategy(n, count) for count in (500, 1000, None) for n in IN_FLIGHT]


def corpus(count: int) -> list[ArticleEvent]:
    return list(generate(sample_articles(REPO / "samples" / "sources.toml"), count))


def documents(events: list[ArticleEvent]) -> list[BulkAction]:
    """Each event's index document, search fields derived, made once for every strategy."""
    return [article_action(event, "") for event in events]


def ndjson_lines(actions: list[BulkAction], alias: str) -> list[bytes]:
    """Each document's two bulk lines, as the raw client sends them."""
    lines = []
    for action in actions:
        header, document = replace(action, index=alias).operations()
        lines.append(json.dumps(header).encode() + b"\n" + document.encode() + b"\n")
    return lines


def bodies(lines: list[bytes], count: int | None) -> Iterator[bytes]:
    body: list[bytes] = []
    size = 0
    for line in lines:
        if body and (len(body) == count or (count is None and size + len(line) > BY_BYTES)):
            yield b"".join(body)
            body, size = [], 0
        body.append(line)
        size += len(line)
    if body:
        yield b"".join(body)


async def wait_searchable(es: AsyncElasticsearch, alias: str, count: int) -> None:
    while True:
        await es.indices.refresh(index=alias)
        if (await es.count(index=alias))["count"] >= count:
            return
        await asyncio.sleep(0.1)


async def raw(
    es: AsyncElasticsearch,
    actions: list[BulkAction],
    prefix: str,
    strategy: Strategy,
    nodes: list[int] | None = None,
) -> tuple[float, Span]:
    names = IndexNames(prefix)
    await ensure_indices(es, names, CommonSettings())
    # The alias is the target, as for the indexer; ready-made bytes, nothing to serialize.
    queue = list(bodies(ndjson_lines(actions, names.articles), strategy.count))
    queue.reverse()

    async def sender() -> None:
        while queue:
            # Bytes go out as they are (the NDJSON serializer passes them through).
            answer = await es.bulk(body=queue.pop(), filter_path="errors")  # type: ignore[arg-type]
            if answer.get("errors"):
                raise RuntimeError(f"raw bulk refused documents ({strategy.name})")

    spent = Spent(nodes)
    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(strategy.in_flight)))
    await wait_searchable(es, names.articles, len(actions))
    return time.perf_counter() - started, spent.stop()


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class Span:
    """What the node and the machine spent between two moments of one run."""

    node_cpu_seconds: float | None
    busy_cores: float
    """The machine's busy CPU over the span, in cores (2.0: both cores all the time)."""


class Spent:
    """Started at a run's clock; `stop()` gives the node's CPU and the busy cores since."""

    def __init__(self, nodes: list[int] | None) -> None:
        self._nodes = nodes or []
        self._node = sum(map(process_cpu_seconds, self._nodes))
        self._busy, self._total = machine_ticks()

    def stop(self) -> Span:
        busy, total = machine_ticks()
        node = sum(map(process_cpu_seconds, self._nodes)) - self._node if self._nodes else None
        cores_ = os.cpu_count() or 1
        return Span(node, cores_ * (busy - self._busy) / max(1, total - self._total))


@dataclass(frozen=True)
class PipelineRun:
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    spent: Span


async def node_pids(es: AsyncElasticsearch) -> list[int] | None:
    """The Elasticsearch nodes' pids when they run on this machine, else None."""
    try:
        return await cores.elasticsearch_pids(es)
    except SystemExit:
        return None


async def pipeline(
    es: AsyncElasticsearch,
    redis: Redis,
    events: list[ArticleEvent],
    prefix: str,
    env_extra: dict[str, str],
    *,
    backlog: bool,
    profile: Path | None,
    nodes: list[int] | None = None,
) -> PipelineRun:
    names = IndexNames(prefix)
    stream = f"{prefix}:articles"
    env = {
        **os.environ,
        "CARAVAN_STREAM_PREFIX": f"{prefix}:",
        "CARAVAN_INDEX_PREFIX": prefix,
        "CARAVAN_HEALTH_PORT": str(free_port()),
        "CARAVAN_LOG_LEVEL": "WARNING",
        **env_extra,
    }
    await ensure_indices(es, names, CommonSettings())
    payloads = [e.model_dump_json() for e in events]
    if backlog:
        await publish(redis, stream, payloads)
    command = [sys.executable, "-m", "bench.indexer_process"]
    indexer = subprocess.Popen(command, cwd=REPO, env=env)  # noqa: ASYNC220 (before the clock)
    # py-spy, not cProfile: it samples every thread, and the decoding runs in one.
    sampler = (
        None
        if profile is None
        else subprocess.Popen(  # noqa: ASYNC220
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(indexer.pid),
                "--format",
                "raw",
                "--rate",
                "250",
                # C frames too: a thread in a system call shows as one, not as Python.
                "--native",
                "--output",
                str(profile),
            ],
            stdout=subprocess.DEVNULL,
        )
    )
    try:
        # The clock starts once the indexer runs (it made its group), not at its
        # imports; polled finely, as with a backlog it starts reading at once.
        while not await _has_group(redis, stream):  # noqa: ASYNC110
            await asyncio.sleep(0.005)  # another process's start: no event to wait on
        cpu_before = process_cpu_seconds(indexer.pid)
        spent = Spent(nodes)
        started = time.perf_counter()
        if not backlog:
            await publish(redis, stream, payloads)
        # Done when the group has read and acknowledged everything (each ack
        # follows Elasticsearch's confirmation), then one refresh, as for raw:
        # polling refreshes during the run would slow the cluster.
        while not await _all_acknowledged(redis, stream, len(events)):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await wait_searchable(es, names.articles, len(events))
        elapsed = time.perf_counter() - started
        return PipelineRun(
            elapsed,
            process_cpu_seconds(indexer.pid) - cpu_before,
            _peak_rss_mib(indexer.pid),
            spent.stop(),
        )
    finally:
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)  # py-spy writes its samples on SIGINT
            sampler.wait(timeout=60)
        indexer.send_signal(signal.SIGTERM)
        indexer.wait(timeout=60)


async def _has_group(redis: Redis, stream: str) -> bool:
    return bool(await redis.exists(stream)) and bool(await redis.xinfo_groups(stream))


async def _all_acknowledged(redis: Redis, stream: str, count: int) -> bool:
    groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    return bool(groups) and (groups[0]["entries-read"] or 0) >= count and groups[0]["pending"] == 0


async def cleanup(es: AsyncElasticsearch, redis: Redis, prefix: str) -> None:
    await drop_namespace(es, redis, f"{prefix}*", f"{prefix}:*")


def profile_top(samples: Path, lines: int = 40, *, process: str = "the indexer") -> str:
    """The functions that cost `process` most: own samples, then inclusive ones.

    `samples` is py-spy's raw output, a line per distinct stack: `frame;frame;... count`.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in samples.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    out = [f"{total} samples of {process}'s busy threads (py-spy, 250 Hz)"]
    for title, counter in (("own", own), ("inclusive", inclusive)):
        out.append(f"\n== by {title} samples ==")
        out += [f"{n / total:6.1%}  {frame}" for frame, n in counter.most_common(lines)]
    return "\n".join(out) + "\n"


async def main(args: argparse.Namespace, profile: Path | None) -> dict[str, Any]:
    count: int = args.events
    in_flight = [int(n) for n in args.pipeline_in_flight.split(",")]
    backlog = args.publish == "before"
    events = corpus(count)
    actions = documents(events)
    run = uuid4().hex[:8]
    es = make_elasticsearch(ElasticsearchSettings())
    redis = make_redis(RedisSettings())
    runs = itertools.count()
    nodes = await node_pids(es)

    def spent(span: Span, seconds: float) -> dict[str, Any]:
        """The node's CPU and the whole machine's per 1,000 documents, and its busy cores."""
        measured = {
            "machine_cpu_seconds_per_1000_docs": round(span.busy_cores * seconds * 1000 / count, 3),
            "busy_cores": round(span.busy_cores, 2),
        }
        if span.node_cpu_seconds:
            measured["node_cpu_seconds_per_1000_docs"] = round(
                span.node_cpu_seconds * 1000 / count, 3
            )
        return measured

    async def raw_run(strategy: Strategy) -> dict[str, Any]:
        prefix = f"bench-{run}-{next(runs)}-"
        seconds, span = await raw(es, actions, prefix, strategy, nodes)
        await cleanup(es, redis, prefix)
        measured = {"docs_per_s": round(count / seconds), **spent(span, seconds)}
        print(f"raw {strategy.name}: {measured}", file=sys.stderr)
        return measured

    async def pipeline_run(limit: int) -> dict[str, Any]:
        prefix = f"bench-{run}-{next(runs)}-"
        env = {"CARAVAN_INDEXER_MAX_IN_FLIGHT": str(limit)} if limit else {}
        result = await pipeline(
            es, redis, events, prefix, env, backlog=backlog, profile=None, nodes=nodes
        )
        await cleanup(es, redis, prefix)
        measured: dict[str, Any] = {
            "max_in_flight": limit or "default",
            "docs_per_s": round(count / result.seconds),
            "cpu_seconds_per_1000_docs": round(result.cpu_seconds * 1000 / count, 3),
            "peak_rss_mib": round(result.peak_rss_mib, 1),
            **spent(result.spent, result.seconds),
        }
        if result.spent.node_cpu_seconds:
            # The yardstick (#27): the indexer's CPU against the node's own for
            # the same documents, in the same run.
            measured["indexer_to_node_cpu"] = round(
                result.cpu_seconds / result.spent.node_cpu_seconds, 3
            )
        print(f"pipeline {measured}", file=sys.stderr)
        return measured

    async with contextlib.AsyncExitStack() as stack:
        placement = await stack.enter_async_context(cores.placed(args.cores, es, redis))
        stack.push_async_callback(redis.aclose)
        stack.push_async_callback(es.close)
        warm = f"bench-{run}-warm-"
        await raw(es, actions[:2000], warm, Strategy(2, 500))  # caches and JIT warm
        await cleanup(es, redis, warm)
        raw_rates = {
            strategy.name: (await raw_run(strategy))["docs_per_s"] for strategy in STRATEGIES
        }
        pipelines = [await pipeline_run(limit) for limit in in_flight]
        # The sweep finds the best raw strategy; single runs drift with the machine's
        # load, so the ratio comes from rounds of that strategy and the pipeline's
        # first setting, alternating which goes first.
        best = max(STRATEGIES, key=lambda strategy: raw_rates[strategy.name])
        head_to_head: dict[str, list[dict[str, Any]]] = {"raw": [], "pipeline": []}
        for round_ in range(args.rounds):
            for side in ("raw", "pipeline") if round_ % 2 else ("pipeline", "raw"):
                head_to_head[side].append(
                    await raw_run(best) if side == "raw" else await pipeline_run(in_flight[0])
                )
        if profile is not None:
            # A run of its own: the profiler's overhead stays out of the figures above.
            prefix = f"bench-{run}-profiled-"
            await pipeline(es, redis, events, prefix, {}, backlog=backlog, profile=profile)
            await cleanup(es, redis, prefix)
    return {
        "events": count,
        "published": args.publish,
        **placement,
        "mean_event_bytes": round(sum(len(e.model_dump_json()) for e in events) / count),
        "raw_docs_per_s": {name: round(rate) for name, rate in raw_rates.items()},
        "best_raw": best.name,
        "pipeline": pipelines,
        "rounds": {
            side: [measured["docs_per_s"] for measured in sides]
            for side, sides in head_to_head.items()
        },
        # Where the co-located gap goes: each round's node and whole-machine CPU per
        # 1,000 documents and busy cores, for both sides.
        "rounds_spent": head_to_head,
        "ratio": round(
            statistics.median(r["docs_per_s"] for r in head_to_head["pipeline"])
            / statistics.median(r["docs_per_s"] for r in head_to_head["raw"]),
            3,
        ),
    }


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument(
        "--pipeline-in-flight",
        default="0",
        help="comma-separated CARAVAN_INDEXER_MAX_IN_FLIGHT values to run the pipeline "
        "with, one run each (0: the indexer's default); the ratio is the first's",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="one more pipeline run, untimed, with py-spy sampling the indexer",
    )
    parser.add_argument(
        "--publish",
        choices=("before", "during"),
        default="before",
        help="the events wait in the stream when the indexer starts, as the raw side's "
        "bodies wait in memory (default), or are published while it runs",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating rounds of the best raw strategy and the pipeline "
        "for the ratio (median of each)",
    )
    cores.add_argument(parser)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    raw_profile = RESULTS / f"indexer-profile-{stamp}.raw" if args.profile else None
    result = asyncio.run(main(args, raw_profile))
    print(json.dumps(result, indent=2))
    (RESULTS / f"indexer-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    if raw_profile is not None and raw_profile.exists():
        (RESULTS / f"indexer-profile-{stamp}.txt").write_text(profile_top(raw_profile))
        raw_profile.unlink()


if __name__ == "__main__":
    cli()
