"""Throughput and latency of /api/search next to the same requests sent to Elasticsearch.

    python -m bench.query_latency [--articles 50000] [--requests 2000] [--concurrency 1,8]
                                  [--rounds 10] [--cores separate|shared] [--profile]

Fills `bench-query-articles` (once; later runs reuse it) with articles generated from
the sample feeds and starts the query service on a free port with its answer cache
and rate limit off. For every search of the mix it works out the Elasticsearch
requests the service makes (the body and `filter_path` of `Backend.search`, and the
second, near-spelling try where the first finds fewer than three hits), then, at each
concurrency, sends the mix straight to Elasticsearch and through `GET /api/search` in
alternating rounds, both from one HTTP client library with the same settings, after a
warm-up of both. Prints p50/p99 and requests per second of both sides, the throughput
ratio and the p99 ratio, and writes them as JSON under bench/results/.

`--profile` has py-spy (a development dependency, locked) sample the service through
the measured rounds, native frames included, and writes its raw samples and their top
(own and inclusive) to bench/results/query-profile-<time>.*. py-spy counts a thread
waiting in the kernel as busy; with native frames those samples show as what they are
(libc's `write`, `epoll_pwait`) instead of landing on the Python line that called them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk

from bench import cores
from bench.corpus import generate, query_mix, sample_articles
from bench.indexer import profile_top
from bench.ports import free_port
from bench.proc import process_cpu_seconds
from services.indexer.documents import article_action
from services.indexer.mappings import ensure_indices
from services.query.search import (
    SEARCH_FILTER_PATH,
    SearchRequest,
    build_search,
    shape_results,
    wants_fuzzy,
)
from shared.clients import make_elasticsearch
from shared.index import IndexNames
from shared.settings import CommonSettings, ElasticsearchSettings, QuerySettings

REPO = Path(__file__).resolve().parents[1]
PREFIX = "bench-query-"
# The goals of issue #17: the service serves at least this share of what Elasticsearch
# serves directly, with a p99 at most this many times the direct one.
THROUGHPUT_GOAL = 0.95
P99_GOAL = 1.1

Call = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Run:
    name: str
    concurrency: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    # The service process's CPU time per search over both sides' rounds (it idles in the
    # direct ones); None for the direct side.
    cpu_ms: float | None = None

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Search:
    """One search of the mix: the reader's parameters and the bodies the service sends."""

    params: list[tuple[str, str]]
    bodies: tuple[bytes, ...]


async def fill(es: AsyncElasticsearch, count: int) -> str:
    names = IndexNames(PREFIX)
    await ensure_indices(es, names, CommonSettings(index_prefix=PREFIX))
    have = (await es.count(index=names.articles))["count"]
    if have < count:
        samples = sample_articles(REPO / "samples" / "sources.toml")
        print(f"indexing {count - have} generated articles into {names.articles}")

        def actions() -> Any:
            for event in generate(samples, count):
                header, source = article_action(event, names.articles).operations()
                yield {**header["index"], "_op_type": "index", "_source": source}

        await async_bulk(
            es.options(request_timeout=120),
            actions(),
            chunk_size=1000,
            raise_on_error=False,
            max_retries=3,
        )
        await es.indices.refresh(index=names.articles)
    return names.articles


def _request(params: dict[str, Any]) -> SearchRequest:
    return SearchRequest(
        q=params["q"],
        page=params["page"],
        size=10,
        sources=(params["source"],) if "source" in params else (),
        date_from=date.fromisoformat(params["date_from"]) if "date_from" in params else None,
        sort=params.get("sort", "relevance"),
    )


async def plan(
    es: AsyncElasticsearch, index: str, mix: list[dict[str, Any]], bound: int
) -> list[Search]:
    """The requests the service makes for each search: asked once, as Backend.search does."""
    gate = asyncio.Semaphore(8)

    async def one(params: dict[str, Any]) -> Search:
        request = _request(params)
        first = build_search(request, bound)
        async with gate:
            response = await es.search(
                index=index, body=first, ignore_unavailable=True, filter_path=SEARCH_FILTER_PATH
            )
        bodies = [first]
        if wants_fuzzy(request, shape_results(dict(response), request)):
            bodies.append(build_search(request, bound, fuzzy=True))
        return Search(
            [(k, str(v)) for k, v in params.items()],
            tuple(json.dumps(body).encode() for body in bodies),
        )

    return list(await asyncio.gather(*(one(params) for params in mix)))


async def timed(calls: list[Call], concurrency: int) -> tuple[list[float], float]:
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


async def compare(
    sides: Mapping[str, Callable[[Search], Call]], mix: list[Search], rounds: int, concurrency: int
) -> list[Run]:
    """Both sides in alternating rounds over the same slices of the mix.

    On a shared machine the background load drifts within a run; alternating
    short rounds, each side first in every other one, gives both the same share of it.
    """
    latencies: dict[str, list[float]] = {name: [] for name in sides}
    seconds = dict.fromkeys(sides, 0.0)
    for number in range(rounds):
        chunk = mix[number::rounds]
        names = list(sides)
        order = names if number % 2 == 0 else names[::-1]
        for name in order:
            spent, wall = await timed([sides[name](search) for search in chunk], concurrency)
            latencies[name] += spent
            seconds[name] += wall
    runs = []
    for name, values in latencies.items():
        cuts = statistics.quantiles(values, n=100)
        runs.append(
            Run(name, concurrency, len(values), seconds[name], cuts[49] * 1000, cuts[98] * 1000)
        )
    return runs


def start_service(port: int) -> subprocess.Popen[bytes]:
    # The answer cache off: every search of the mix reaches Elasticsearch, as on the
    # direct side (a repeated search would otherwise be answered from memory).
    env = {
        **os.environ,
        "CARAVAN_INDEX_PREFIX": PREFIX,
        "CARAVAN_QUERY_PORT": str(port),
        "CARAVAN_QUERY_RATE_LIMIT": "0",
        "CARAVAN_QUERY_CACHE_SECONDS": "0",
        "CARAVAN_LOG_LEVEL": "WARNING",
    }
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


def elasticsearch_session(settings: ElasticsearchSettings) -> aiohttp.ClientSession:
    """A plain aiohttp session to the (first) node, with the service client's credentials."""
    headers = {"content-type": "application/json"}
    auth = None
    if settings.api_key:
        headers["authorization"] = f"ApiKey {settings.api_key.get_secret_value()}"
    elif settings.username and settings.password:
        auth = aiohttp.BasicAuth(settings.username, settings.password.get_secret_value())
    context = ssl.create_default_context(cafile=settings.ca_certs) if settings.ca_certs else None
    # Without aiohttp's Accept-Encoding, as the service's client asks: a gzipped answer
    # would cost the node the compression on the direct side only.
    return aiohttp.ClientSession(
        settings.url.split(",")[0].strip(),
        headers=headers,
        skip_auto_headers=("accept-encoding",),
        auth=auth,
        connector=aiohttp.TCPConnector(ssl=context or True),
    )


async def main(args: argparse.Namespace) -> None:
    settings = ElasticsearchSettings()
    es = make_elasticsearch(settings)
    async with cores.placed(args.cores, es) as placement:
        runs = await measure(args, es, settings)
    report(runs, args, placement)


async def measure(
    args: argparse.Namespace, es: AsyncElasticsearch, settings: ElasticsearchSettings
) -> list[Run]:
    port = free_port()
    service = start_service(port)  # placed with this process
    runs: list[Run] = []
    stamp = time.strftime("%Y%m%dT%H%M%S")
    profile = REPO / "bench" / "results" / f"query-profile-{stamp}.raw" if args.profile else None
    sampler: subprocess.Popen[bytes] | None = None
    try:
        index = await fill(es, args.articles)
        samples = sample_articles(REPO / "samples" / "sources.toml")
        mix = await plan(
            es, index, query_mix(samples, args.requests), QuerySettings().exact_total_up_to
        )
        second_tries = sum(len(search.bodies) > 1 for search in mix)
        print(f"{len(mix)} searches, {second_tries} of them with a second try")
        path = f"/{index}/_search"
        query = {"ignore_unavailable": "true", "filter_path": ",".join(SEARCH_FILTER_PATH)}
        # Both sides through aiohttp (the HTTP client under the service's Elasticsearch
        # client too), each reading the whole answer as bytes: the same client cost on
        # both, so the difference is the service's.
        async with (
            aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client,
            elasticsearch_session(settings) as direct_client,
        ):
            await wait_ready(client)

            def through_service(search: Search) -> Call:
                async def call() -> None:
                    async with client.get("/api/search", params=search.params) as response:
                        response.raise_for_status()
                        await response.read()

                return call

            def direct(search: Search) -> Call:
                async def call() -> None:
                    for body in search.bodies:
                        async with direct_client.post(path, params=query, data=body) as response:
                            response.raise_for_status()
                            await response.read()

                return call

            sides = {"elasticsearch": direct, "service": through_service}
            for concurrency in args.concurrency:
                await compare(sides, mix[:200], 1, concurrency)  # warm-up of both
                if profile is not None and sampler is None:
                    sampler = start_sampler(service.pid, profile)
                before = process_cpu_seconds(service.pid)
                direct_run, service_run = await compare(sides, mix, args.rounds, concurrency)
                after = process_cpu_seconds(service.pid)
                cpu = (after - before) * 1000 / service_run.requests
                runs += [direct_run, replace(service_run, cpu_ms=cpu)]
    finally:
        if sampler is not None and profile is not None:
            sampler.send_signal(signal.SIGINT)  # py-spy writes its samples on SIGINT
            sampler.wait(timeout=60)
            top = profile.with_suffix(".txt")
            top.write_text(profile_top(profile, lines=60, process="the query service"))
            print(f"profile: {top.relative_to(REPO)}")
        service.terminate()
        service.wait(timeout=30)
        await es.close()
    return runs


def start_sampler(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy on the service (every thread, the idle ones left out, native frames), raw samples."""
    output.parent.mkdir(exist_ok=True)
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "250",
            "--native",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
    )


def ratios(direct: Run, service: Run) -> dict[str, float]:
    return {
        "throughput_ratio": service.per_second / direct.per_second,
        "p99_ratio": service.p99_ms / direct.p99_ms,
    }


def report(runs: list[Run], args: argparse.Namespace, placement: dict[str, object]) -> None:
    print(
        f"{args.articles} articles, {args.requests} searches per concurrency, "
        f"{args.rounds} alternating rounds, service answer cache off, {placement}"
    )
    print(f"{'conc':>4} {'side':14} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    pairs = [(runs[i], runs[i + 1]) for i in range(0, len(runs), 2)]
    rows = []
    for direct, service in pairs:
        for run in (direct, service):
            print(
                f"{run.concurrency:4} {run.name:14} {run.p50_ms:8.1f} {run.p99_ms:8.1f} "
                f"{run.per_second:8.0f}"
            )
        measured = ratios(direct, service)
        if service.cpu_ms is not None:
            print(f"{'':4} service CPU {service.cpu_ms:.2f} ms per search")
        print(
            f"{'':4} throughput {measured['throughput_ratio']:.2f}x of direct "
            f"(goal ≥ {THROUGHPUT_GOAL}), p99 {measured['p99_ratio']:.2f}x of direct "
            f"(goal ≤ {P99_GOAL})"
        )
        rows.append(
            {
                "concurrency": direct.concurrency,
                **measured,
                "runs": [{**asdict(r), "per_second": r.per_second} for r in (direct, service)],
            }
        )
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    path = results / f"query-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "articles": args.articles,
                "requests": args.requests,
                "rounds": args.rounds,
                **placement,
                "concurrencies": rows,
            },
            indent=2,
        )
    )
    print(f"written to {path.relative_to(REPO)}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument(
        "--concurrency",
        default=[1, 8],
        type=lambda text: [int(part) for part in text.split(",")],
        help="comma-separated, each measured in turn (default 1,8)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=10,
        help="alternating rounds of each side (fair under drifting load)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy samples of the service (see above)"
    )
    cores.add_argument(parser)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
