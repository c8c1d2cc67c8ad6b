"""CPU per search request at each layer of the query service's Elasticsearch client.

    python -m bench.client_layers [--articles 50000] [--requests 1500] [--rounds 3]
                                  [--concurrency 8]

In one process, asyncio on uvloop as the service runs, against the query bench's
index (filled here as `make bench-query` fills it, when it has fewer than `--articles`),
the searches of the query bench's mix, each body made once, go `--concurrency` at a
time through each layer in turn:

- `aiohttp`: a plain session, asking no gzip, as the service's client asks none (the
  library's default node is built on it);
- `node`: the client's node (since session 12 Caravan's plain-HTTP node,
  `shared/esnode.py`: its headers, timeout and response meta);
- `node + parse`: and the answer parsed by the client's JSON serializer, as the
  transport parses it (orjson since session 11; `json.loads` before);
- `transport`: the node pool, its retries and failover, the answer parsed;
- `client`: `AsyncElasticsearch.perform_request`, as `Backend._search` calls it (its
  header merge, error mapping and OpenTelemetry span);
- `Backend.search`: the body built, the second, near-spelling try where the first
  finds fewer than three hits, and the page shaped; per search, not per request.

Each round runs the layers one after another on the same mix; the table gives each
layer's median over the rounds of its CPU (user + system, this process) per request, and
what it adds to the layer above it. The service's own HTTP hop (uvicorn) is not here:
`make bench-query` measures the service whole, `make bench-hops` the two hops' floor.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import cast

import uvloop
from elastic_transport import BaseAsyncNode, HttpHeaders
from pydantic_core import to_json

from bench.corpus import query_mix, sample_articles
from bench.query_latency import PREFIX, REPO, elasticsearch_session, fill
from bench.query_latency import _request as search_request
from services.query.backend import JSON_HEADERS, Backend
from services.query.search import build_search
from shared.clients import make_elasticsearch
from shared.index import IndexNames
from shared.settings import ElasticsearchSettings, QuerySettings

Call = Callable[[], Awaitable[object]]


async def cpu_per_call(calls: list[Call], concurrency: int) -> float:
    """Milliseconds of this process's CPU per call, `concurrency` calls at a time."""
    queue = list(reversed(calls))

    async def worker() -> None:
        while queue:
            await queue.pop()()

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) * 1000 / len(calls)


async def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    settings, query = ElasticsearchSettings(), QuerySettings()
    es = make_elasticsearch(settings)
    names = IndexNames(PREFIX)
    await fill(es, args.articles)
    # The answer cache off (0 s), as the query bench runs the service.
    backend = Backend(
        es, names.articles, names.quotes, query.exact_total_up_to, 0, query.rate_digits
    )
    mix = query_mix(sample_articles(REPO / "samples" / "sources.toml"), args.requests)
    requests = [search_request(params) for params in mix]
    bodies = [to_json(build_search(request, query.exact_total_up_to)) for request in requests]
    target = backend._search_target  # the path the service asks, made once
    headers = HttpHeaders(JSON_HEADERS)
    session = elasticsearch_session(settings)
    # The first request opens the client's node and its first connection.
    await es.perform_request("POST", target, headers=JSON_HEADERS, body=bodies[0])
    # The pool is typed for sync nodes; an AsyncTransport's are async.
    node = cast("BaseAsyncNode", es.transport.node_pool.get())
    parse = es.transport.serializers.get_serializer(JSON_HEADERS["accept"]).loads

    async def plain(n: int) -> None:
        async with session.post(target, data=bodies[n]) as response:
            await response.read()

    async def at_node(n: int) -> bytes:
        answer = await node.perform_request("POST", target, body=bodies[n], headers=headers)
        return answer.body

    async def parsed(n: int) -> None:
        parse(await at_node(n))

    async def transport(n: int) -> None:
        await es.transport.perform_request("POST", target, body=bodies[n], headers=headers)

    async def client(n: int) -> None:
        await es.perform_request(
            "POST",
            target,
            headers=JSON_HEADERS,
            body=bodies[n],
            endpoint_id="search",
            path_parts={"index": names.articles},
        )

    async def search(n: int) -> None:
        await backend.search(requests[n])

    layers: dict[str, Callable[[int], Awaitable[object]]] = {
        "aiohttp": plain,
        "node": at_node,
        "node + parse": parsed,
        "transport": transport,
        "client": client,
        "Backend.search (per search)": search,
    }
    spent: dict[str, list[float]] = {name: [] for name in layers}
    try:
        for number in range(args.rounds + 1):
            for name, layer in layers.items():
                calls: list[Call] = [partial(layer, n) for n in range(len(requests))]
                cpu = await cpu_per_call(calls, args.concurrency)
                if number:  # round 0 warms every layer up
                    spent[name].append(cpu)
    finally:
        await session.close()
        await es.close()
    return spent


def report(spent: dict[str, list[float]], args: argparse.Namespace) -> None:
    print(
        f"{args.requests} searches, {args.rounds} rounds, concurrency {args.concurrency}; "
        "ms of CPU per request, median over the rounds (each round's in brackets)"
    )
    above = 0.0
    for name, values in spent.items():
        median = statistics.median(values)
        rounds = " ".join(f"{value:.3f}" for value in values)
        added = "" if name.startswith("Backend") or not above else f"  +{median - above:.3f}"
        print(f"  {name:28s} {median:.3f}{added}   [{rounds}]")
        above = median


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=1_500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    report(uvloop.run(measure(arguments)), arguments)
