"""Indexer throughput, publish to searchable, against a raw bulk of the same documents.

    python -m bench.indexer --events 20000

Both sides write the same documents (built from the real sample feeds) into
indices made from the same template, on the same cluster, in the same run:

- baseline: `elasticsearch.helpers.async_bulk` straight into the index;
- pipeline: XADD to the articles stream, the indexer as its own process reads,
  writes and acknowledges; the clock stops when the count is searchable.

Reports documents per second of each, their ratio, and the indexer's peak RSS.
Needs REDIS_URL and ELASTICSEARCH_URL (`make bench-indexer` starts local ones).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from elasticsearch import AsyncElasticsearch, helpers
from redis.asyncio import Redis

from services.indexer.documents import article_action
from services.indexer.mappings import ensure_indices
from services.ingest.feeds import parse_feed
from services.ingest.sources import Source
from shared.clients import make_elasticsearch, make_redis
from shared.events import ArticleEvent
from shared.index import IndexNames
from shared.settings import CommonSettings, ElasticsearchSettings, RedisSettings

REPO = Path(__file__).resolve().parents[1]
FEEDS = ("feed-heise-developer.atom", "feed-meduza-scraped.xml", "feed-uol-noticias.rss",
         "feed-andijonfk-uz.xml")


def realistic_events(count: int) -> list[ArticleEvent]:
    """`count` distinct articles cycling through the real feeds' titles and texts."""
    now = datetime.now(UTC)
    originals: list[ArticleEvent] = []
    for name in FEEDS:
        path = REPO / "samples" / "realdata" / name
        originals += parse_feed(path.read_bytes(), Source(name=name, url=str(path)), now).events
    events = []
    for n in range(count):
        base = originals[n % len(originals)]
        events.append(base.model_copy(update={
            "event_id": uuid4(),
            "canonical_url": f"{base.canonical_url}?bench={n}",
            "title": f"{base.title} ({n})",
        }))
    return events


async def wait_searchable(es: AsyncElasticsearch, alias: str, count: int) -> None:
    while True:
        await es.indices.refresh(index=alias)
        if (await es.count(index=alias))["count"] >= count:
            return
        await asyncio.sleep(0.1)


async def raw_bulk(es: AsyncElasticsearch, events: list[ArticleEvent], prefix: str) -> float:
    names = IndexNames(prefix)
    await ensure_indices(es, names, CommonSettings())
    actions = []
    for event in events:
        action = article_action(event, names.articles)
        actions.append({"_index": action.index, "_id": action.doc_id,
                        "_source": json.loads(action.document),
                        "version": action.version, "version_type": "external"})
    started = time.perf_counter()
    await helpers.async_bulk(es, actions, chunk_size=500)
    await wait_searchable(es, names.articles, len(events))
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def pipeline(es: AsyncElasticsearch, redis: Redis, events: list[ArticleEvent],
                   prefix: str, batch_size: int) -> tuple[float, float]:
    names = IndexNames(prefix)
    env = {**os.environ, "CARAVAN_STREAM_PREFIX": f"{prefix}:", "CARAVAN_INDEX_PREFIX": prefix,
           "CARAVAN_HEALTH_PORT": str(_free_port()), "CARAVAN_LOG_LEVEL": "WARNING",
           "CARAVAN_INDEXER_BATCH_SIZE": str(batch_size)}
    indexer = subprocess.Popen(  # noqa: ASYNC220 (started once, outside the timed part)
        [sys.executable, "-m", "services.indexer"], cwd=REPO, env=env)
    try:
        while not await es.indices.exists_alias(name=names.articles):  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # polling another process: no event to wait on
        payloads = [e.model_dump_json() for e in events]
        started = time.perf_counter()
        for chunk in range(0, len(payloads), 1000):
            async with redis.pipeline(transaction=False) as pipe:
                for payload in payloads[chunk:chunk + 1000]:
                    pipe.xadd(f"{prefix}:articles", {"__data__": payload})
                await pipe.execute()
        # Done when the group has read and acknowledged everything (each ack
        # follows Elasticsearch's confirmation), then one refresh, as for the
        # baseline: polling refreshes during the run would slow the cluster.
        while not await _all_acknowledged(  # noqa: ASYNC110 (another process's progress)
                redis, f"{prefix}:articles", len(events)):
            await asyncio.sleep(0.05)
        await wait_searchable(es, names.articles, len(events))
        elapsed = time.perf_counter() - started
        return elapsed, _peak_rss_mib(indexer.pid)
    finally:
        indexer.send_signal(signal.SIGTERM)
        indexer.wait(timeout=60)


async def _all_acknowledged(redis: Redis, stream: str, count: int) -> bool:
    groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    return bool(groups) and groups[0]["entries-read"] >= count and groups[0]["pending"] == 0


async def cleanup(es: AsyncElasticsearch, redis: Redis, prefix: str) -> None:
    indices = await es.indices.get(index=f"{prefix}*", allow_no_indices=True)
    if indices:
        await es.indices.delete(index=",".join(indices))
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)


async def main(count: int, batch_size: int) -> dict[str, Any]:
    events = realistic_events(count)
    run = uuid4().hex[:8]
    es = make_elasticsearch(ElasticsearchSettings())
    redis = make_redis(RedisSettings())
    prefixes = [f"bench-{run}-warm-", f"bench-{run}-raw-", f"bench-{run}-pipe-"]
    try:
        await raw_bulk(es, realistic_events(1000), prefixes[0])  # JIT and caches warm
        raw_seconds = await raw_bulk(es, events, prefixes[1])
        pipe_seconds, peak_rss = await pipeline(es, redis, events, prefixes[2], batch_size)
    finally:
        for prefix in prefixes:
            await cleanup(es, redis, prefix)
        await es.close()
        await redis.aclose()
    return {
        "events": count,
        "raw_bulk_docs_per_s": round(count / raw_seconds),
        "pipeline_docs_per_s": round(count / pipe_seconds),
        "ratio": round(raw_seconds / pipe_seconds, 3),
        "indexer_peak_rss_mib": round(peak_rss, 1),
        "batch_size": batch_size,
        "mean_document_bytes": round(sum(len(e.model_dump_json()) for e in events) / count),
    }


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    result = asyncio.run(main(args.events, args.batch_size))
    print(json.dumps(result, indent=2))
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"indexer-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    cli()
