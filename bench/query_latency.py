"""Latency and throughput of /api/search next to the same queries sent to Elasticsearch.

    python -m bench.query_latency [--articles 50000] [--requests 2000] [--concurrency 8]
                                  [--rounds 10]

Fills `bench-query-articles` (once; later runs reuse it) with articles generated from
the sample feeds, starts the query service on a free port with its cache and
rate limit off, then sends the same query mix through the service and, with the
requests the service would make, straight to Elasticsearch, in alternating
rounds. Prints p50/p99 and
requests per second of both and the p99 overhead ratio, and writes them as JSON
under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk

from bench.corpus import generate, query_mix, sample_articles
from services.indexer.documents import article_action
from services.indexer.mappings import ensure_indices
from services.query.search import SEARCH_FILTER_PATH, SearchRequest, build_search
from shared.clients import make_elasticsearch
from shared.index import IndexNames
from shared.settings import ElasticsearchSettings, QuerySettings

REPO = Path(__file__).resolve().parents[1]
PREFIX = "bench-query-"
GOAL = 1.3


@dataclass(frozen=True)
class Run:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


async def fill(es: AsyncElasticsearch, count: int) -> str:
    names = IndexNames(PREFIX)
    await ensure_indices(es, names)
    have = (await es.count(index=names.articles))["count"]
    if have < count:
        samples = sample_articles(REPO / "samples" / "sources.toml")
        print(f"indexing {count - have} generated articles into {names.articles}")

        def actions() -> Any:
            for event in generate(samples, count):
                header, source = article_action(event, names.articles).operations()
                yield {**header["index"], "_op_type": "index", "_source": source}

        await async_bulk(es.options(request_timeout=120), actions(), chunk_size=1000,
                         raise_on_error=False, max_retries=3)
        await es.indices.refresh(index=names.articles)
    return names.articles


def _request(params: dict[str, Any]) -> SearchRequest:
    return SearchRequest(
        q=params["q"], page=params["page"], size=10,
        sources=(params["source"],) if "source" in params else (),
        date_from=date.fromisoformat(params["date_from"]) if "date_from" in params else None,
        sort=params.get("sort", "relevance"))


async def timed(calls: list[Callable[[], Awaitable[None]]],
                concurrency: int) -> tuple[list[float], float]:
    """Latency of each call, `concurrency` at a time, and the wall time of them all."""
    latencies: list[float] = []
    queue = list(reversed(calls))

    async def worker() -> None:
        while queue:
            call = queue.pop()
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


async def compare(sides: Mapping[str, Callable[[dict[str, Any]], Callable[[], Awaitable[None]]]],
                  mix: list[dict[str, Any]], rounds: int, concurrency: int) -> list[Run]:
    """Both sides in alternating rounds over the same slices of the mix.

    On a shared machine the background load drifts within a run; alternating
    short rounds gives both sides the same share of it.
    """
    latencies: dict[str, list[float]] = {name: [] for name in sides}
    seconds = dict.fromkeys(sides, 0.0)
    for number in range(rounds):
        chunk = mix[number::rounds]
        for name, make in sides.items():
            spent, wall = await timed([make(p) for p in chunk], concurrency)
            latencies[name] += spent
            seconds[name] += wall
    runs = []
    for name, values in latencies.items():
        cuts = statistics.quantiles(values, n=100)
        runs.append(Run(name, len(values), seconds[name], cuts[49] * 1000, cuts[98] * 1000))
    return runs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CARAVAN_INDEX_PREFIX": PREFIX, "CARAVAN_QUERY_PORT": str(port),
           "CARAVAN_QUERY_RATE_LIMIT": "0", "CARAVAN_QUERY_CACHE_SECONDS": "0",
           "CARAVAN_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "services", "query"], env=env, cwd=REPO)


async def wait_ready(client: aiohttp.ClientSession) -> None:
    # /healthz, not /readyz: searches need Elasticsearch only, not the Redis of the ticker.
    for _ in range(300):
        try:
            async with client.get("/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the query service did not become ready")


async def main(args: argparse.Namespace) -> None:
    es = make_elasticsearch(ElasticsearchSettings())
    port = _free_port()
    service = start_service(port)
    try:
        index = await fill(es, args.articles)
        samples = sample_articles(REPO / "samples" / "sources.toml")
        mix = query_mix(samples, args.requests)
        bound = QuerySettings().exact_total_up_to
        # aiohttp, the HTTP client the Elasticsearch client uses: both sides pay the same
        # client cost, so the difference is the service's.
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
            await wait_ready(client)

            def through_service(params: dict[str, Any]) -> Callable[[], Awaitable[None]]:
                query = [(k, str(v)) for k, v in params.items()]

                async def call() -> None:
                    async with client.get("/api/search", params=query) as response:
                        response.raise_for_status()
                        await response.read()
                return call

            def direct(params: dict[str, Any]) -> Callable[[], Awaitable[None]]:
                body = build_search(_request(params), bound)

                async def call() -> None:
                    await es.search(index=index, body=body, ignore_unavailable=True,
                                    filter_path=SEARCH_FILTER_PATH)
                return call

            sides = {"elasticsearch": direct, "service": through_service}
            await compare(sides, mix[:200], 1, args.concurrency)  # warm-up
            runs = await compare(sides, mix, args.rounds, args.concurrency)
    finally:
        service.terminate()
        service.wait(timeout=30)
        await es.close()
    report(runs, args)


def report(runs: list[Run], args: argparse.Namespace) -> None:
    direct, service = runs
    ratio = service.p99_ms / direct.p99_ms
    print(f"{args.articles} articles, {args.requests} searches, concurrency {args.concurrency}, "
          f"{args.rounds} alternating rounds")
    print(f"{'':14} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for run in runs:
        print(f"{run.name:14} {run.p50_ms:8.1f} {run.p99_ms:8.1f} {run.per_second:8.0f}")
    verdict = "within" if ratio <= GOAL else "over"
    print(f"p99 overhead: {ratio:.2f}x the direct p99 ({verdict} the {GOAL}x goal)")
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    path = results / f"query-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"articles": args.articles, "requests": args.requests,
                                "concurrency": args.concurrency, "rounds": args.rounds,
                                "p99_ratio": ratio,
                                "runs": [{**asdict(r), "per_second": r.per_second}
                                         for r in runs]}, indent=2))
    print(f"written to {path.relative_to(REPO)}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10,
                        help="alternating rounds of each side (fair under drifting load)")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
