"""Scaling out: indexer and ingest throughput with 1, 2 and 3 processes, and freshness.

    python -m bench.scaling --events 20000 --sources 60 --items 10 --duration 60

In one run, on one Redis and one Elasticsearch, each part under its own stream and
index prefix:

- indexer: N article events (bench/corpus.py) published at once to the articles
  stream, drained by 1, 2 and 3 indexer processes in the one group; documents per
  second until every entry is acknowledged (each ack follows Elasticsearch's
  confirmation), and the ratio to one process;
- ingest: a loopback HTTP server serves S RSS feeds of K items, each linking to a
  real article page (samples/realdata); 1, 2 and 3 ingest processes share the sources
  by lease; articles published per second (first to last entry of the stream) and
  the ratio to one replica. The feeds stay empty until the leases are spread, so the
  start-up handover of sources is not measured. Also per replica, per core (articles
  per CPU second of the ingest processes and their parse workers, from /proc), their
  peak resident memory, and what the rest of the machine was busy with meanwhile;
- freshness: a producer publishes article events at a steady rate (200/s) with one
  indexer running; sampled events are searched for by _id (a search, so it sees only
  what a refresh made visible, unlike a realtime GET) every poll interval; p50 and p99
  of publish to searchable, against the index's refresh interval.

Also the sizes a capacity estimate needs: mean event bytes, index store bytes per
document (primaries, merged to one segment), Redis bytes per stream entry.
Needs REDIS_URL and ELASTICSEARCH_URL (`make bench-scaling` starts local ones);
`--parts ingest` runs that part alone, without Elasticsearch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.request import urlopen
from uuid import uuid4
from xml.sax.saxutils import escape

from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from bench.corpus import generate, sample_articles
from bench.namespace import drop_namespace
from bench.ports import free_port
from bench.proc import TICK, machine_ticks, stat_fields
from bench.publish import publish
from shared.clients import make_elasticsearch, make_redis
from shared.index import IndexNames
from shared.settings import ElasticsearchSettings, RedisSettings

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "sources.toml"
PAGES = ("article-dw-fruehburgunder.html", "article-heraldsun.html", "article-lsm-lv.html")
COUNTS = (1, 2, 3)
PARTS = ("indexer", "ingest", "freshness")
PARTS_ON_ELASTICSEARCH = {"indexer", "freshness"}
GROUP = "indexer"
# Ingest: leases short enough that the replicas spread the sources within seconds (a
# share is given back at a renewal, every third of the lease), long enough that
# renewing 60 of them one by one on a loaded machine stays within the lease; a short
# interval, so that every source is polled soon after the feeds fill.
INGEST_INTERVAL = 2.0
INGEST_LEASE = 10.0
# No part should take this long; past it the run stops with the services' logs.
PART_TIMEOUT = 600.0
_CANONICAL = re.compile(r'(rel="canonical"[^>]*href="|property="og:url" content=")([^"]+)')


# --- pure functions -------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ratios(rates: dict[int, float]) -> dict[int, float]:
    """Each rate divided by the rate of one process."""
    return {count: round(rate / rates[1], 2) for count, rate in rates.items()}


def entry_ms(entry_id: bytes | str) -> int:
    """The milliseconds part of a stream entry id: when Redis appended it."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def parse_stat(text: str) -> tuple[int, int, int]:
    """A /proc/<pid>/stat line: the parent's pid, the CPU clock ticks of the process and
    of its children it reaped (utime, stime, cutime, cstime), and its resident pages."""
    fields = stat_fields(text)
    return int(fields[1]), sum(int(f) for f in fields[11:15]), int(fields[21])


def descendants(parents: dict[int, int], roots: list[int]) -> list[int]:
    """The roots and every process below them, from a pid -> parent's pid map."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [r for r in roots if r in parents]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def evenly_spread(latest: dict[int, str], replicas: list[str], sources: int) -> bool:
    """Every source polled lately, and each replica holding close to its fair share."""
    if len(latest) < sources:
        return False
    share = -(-sources // len(replicas))
    held = [list(latest.values()).count(name) for name in replicas]
    return all(share - 2 <= n <= share for n in held)


def feed_xml(source: int, items: int, port: int, filled: bool) -> bytes:
    entries = (
        "".join(
            f"<item><title>Source {source} article {i}</title>"
            f"<link>http://127.0.0.1:{port}/a/{source}/{i}</link><guid>s{source}-{i}</guid>"
            f"<pubDate>{format_datetime(datetime(2024, 5, 1, 12, i % 60, tzinfo=UTC))}</pubDate>"
            f"<description>{escape(f'Summary of article {i} of source {source}.')}</description>"
            "</item>"
            for i in range(items)
        )
        if filled
        else ""
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>bench {source}</title><link>http://127.0.0.1:{port}/</link>"
        f"<description>bench</description>{entries}</channel></rss>"
    ).encode()


def article_page(template: str, url: str) -> bytes:
    """A real article page that declares `url` as its canonical address."""
    return _CANONICAL.sub(lambda m: m.group(1) + url, template).encode()


def sources_toml(sources: int, port: int) -> str:
    return "".join(
        f'[[sources]]\nname = "s{n}"\nurl = "http://127.0.0.1:{port}/feed/{n}"\n'
        f"interval = {INGEST_INTERVAL}\n\n"
        for n in range(sources)
    )


# --- processes -------------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class TreeUsage:
    """What a set of processes and their descendants (the ingest services and their
    parse workers) used: CPU seconds so far, including those of the workers that were
    replaced (their time is in the c-fields of the process that reaped them), and
    resident bytes now."""

    cpu_seconds: float
    rss_bytes: int


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (not idle, not waiting on I/O) since boot."""
    return machine_ticks()[0] / TICK


def tree_usage(roots: list[int]) -> TreeUsage:
    stats: dict[int, tuple[int, int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = parse_stat((entry / "stat").read_text())
            except (OSError, ValueError):  # ended meanwhile
                continue
    tree = descendants({pid: stat[0] for pid, stat in stats.items()}, roots)
    return TreeUsage(
        sum(stats[pid][1] for pid in tree) / TICK, sum(stats[pid][2] for pid in tree) * _PAGE
    )


@dataclass
class Services:
    """Service processes started with `python -m services.<name>`, logs in `logs`."""

    logs: Path
    running: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, module: str, label: str, env: dict[str, str]) -> int:
        """Start one; its health port."""
        port = free_port()
        with (self.logs / f"{label}.log").open("wb") as log:
            self.running.append(
                (
                    label,
                    subprocess.Popen(
                        [sys.executable, "-m", f"services.{module}"],
                        cwd=REPO,
                        env={
                            **os.environ,
                            "CARAVAN_LOG_LEVEL": "WARNING",
                            "CARAVAN_HEALTH_PORT": str(port),
                            **env,
                        },
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    ),
                )
            )
        return port

    def pids(self) -> list[int]:
        return [process.pid for _, process in self.running]

    def stop(self) -> None:
        for _, process in self.running:
            process.send_signal(signal.SIGTERM)
        for _, process in self.running:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running.clear()

    def report_logs(self) -> None:
        """The end of every running service's log, on stderr (the logs go with their
        temporary directory)."""
        for label, _ in self.running:
            tail = (self.logs / f"{label}.log").read_text(errors="replace")[-2000:]
            print(f"--- {label}\n{tail}", file=sys.stderr)

    def check(self) -> None:
        """Fail fast when a service died, with the end of its log."""
        for label, process in self.running:
            if process.poll() is not None:
                tail = (self.logs / f"{label}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{label} exited with {process.returncode}:\n{tail}")


def _prefixes(prefix: str) -> dict[str, str]:
    return {"CARAVAN_STREAM_PREFIX": f"{prefix}:", "CARAVAN_INDEX_PREFIX": f"{prefix}-"}


async def _poll(services: Services, seconds: float = 0.05) -> None:
    # Another process's progress: nothing to wait on but its visible effects.
    services.check()
    await asyncio.sleep(seconds)


def _ready(port: int) -> bool:
    try:
        with urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:  # not listening yet, or 503 (HTTPError is an OSError)
        return False


async def _wait_ready(services: Services, ports: list[int]) -> None:
    """Until every service answers ready: started up, connected, consuming."""
    while not all(await asyncio.gather(*(asyncio.to_thread(_ready, p) for p in ports))):
        await _poll(services, 0.1)


async def _start_indexers(services: Services, prefix: str, count: int) -> None:
    await _wait_ready(
        services,
        [
            services.start(
                "indexer",
                f"{prefix}-indexer-{n}",
                {**_prefixes(prefix), "CARAVAN_INDEXER_CONSUMER": f"{prefix}-{n}"},
            )
            for n in range(count)
        ],
    )


# --- indexer ---------------------------------------------------------------------------


async def _drained(redis: Redis, stream: str, count: int) -> bool:
    groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    group = next(g for g in groups if g["name"] in (GROUP, GROUP.encode()))
    return bool(group["entries-read"] >= count and group["pending"] == 0)


async def _drain_seconds(
    services: Services, redis: Redis, prefix: str, count: int, payloads: list[str]
) -> float:
    """Seconds from the first publish until `count` indexers have acknowledged all."""
    stream = f"{prefix}:articles"
    await _start_indexers(services, prefix, count)
    started = time.perf_counter()
    await publish(redis, stream, payloads)
    while not await _drained(redis, stream, len(payloads)):
        await _poll(services)
    elapsed = time.perf_counter() - started
    services.stop()
    return elapsed


async def indexer_throughput(
    services: Services, es: AsyncElasticsearch, redis: Redis, run: str, payloads: list[str]
) -> dict[str, Any]:
    # A first pass, not counted: Elasticsearch's JIT and caches warm up on it, so the
    # one-process run is not the only one paying for that.
    await _drain_seconds(services, redis, f"{run}-idxwarm", 1, payloads)
    rates: dict[int, float] = {}
    for count in COUNTS:
        rates[count] = len(payloads) / await _drain_seconds(
            services, redis, f"{run}-idx{count}", count, payloads
        )
        print(f"indexer x{count}: {rates[count]:.0f} docs/s", file=sys.stderr)
    sizes = await _sizes(es, redis, f"{run}-idx1", len(payloads))
    return {
        "events": len(payloads),
        "docs_per_s": {k: round(v) for k, v in rates.items()},
        "ratio": ratios(rates),
        **sizes,
    }


async def _sizes(es: AsyncElasticsearch, redis: Redis, prefix: str, count: int) -> dict[str, float]:
    stream = f"{prefix}:articles"
    alias = IndexNames(f"{prefix}-").articles
    await es.indices.refresh(index=alias)
    await es.indices.forcemerge(index=alias, max_num_segments=1)
    stats = (await es.indices.stats(index=alias, metric="store,docs"))["_all"]["primaries"]
    stream_bytes = await redis.memory_usage(stream, samples=0) or 0
    return {
        "index_store_bytes_per_doc": round(
            stats["store"]["size_in_bytes"] / stats["docs"]["count"]
        ),
        "indexed_docs": stats["docs"]["count"],
        "redis_bytes_per_entry": round(stream_bytes / count),
    }


# --- ingest ----------------------------------------------------------------------------


@dataclass
class Web:
    """The loopback sources: feeds (empty until `filled`) and article pages; it notes
    which replica (by User-Agent) fetched each feed, and when."""

    sources: int
    items: int
    pages: list[str]
    filled: bool = False
    fetches: list[tuple[int, str, float]] = field(default_factory=list)

    def answer(self, path: str, agent: str, port: int) -> bytes | None:
        parts = path.strip("/").split("/")
        if parts[0] == "feed" and len(parts) == 2:
            self.fetches.append((int(parts[1]), agent, time.monotonic()))
            return feed_xml(int(parts[1]), self.items, port, self.filled)
        if parts[0] == "a" and len(parts) == 3:
            n = int(parts[1]) * self.items + int(parts[2])
            return article_page(self.pages[n % len(self.pages)], f"http://127.0.0.1:{port}{path}")
        return None

    def latest_fetcher(self, since: float) -> dict[int, str]:
        return {source: agent for source, agent, at in list(self.fetches) if at >= since}


@contextmanager
def serve(web: Web) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = web.answer(self.path, self.headers.get("User-Agent", ""), port)
            self.send_response(200 if body is not None else 404)
            self.send_header(
                "Content-Type",
                "text/html; charset=utf-8"
                if self.path.startswith("/a/")
                else "application/rss+xml",
            )
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        httpd.shutdown()
        httpd.server_close()


async def ingest_throughput(
    services: Services, redis: Redis, run: str, sources: int, items: int
) -> dict[str, Any]:
    pages = [(REPO / "samples" / "realdata" / name).read_text(encoding="utf-8") for name in PAGES]
    rates: dict[int, float] = {}
    usage: dict[int, dict[str, float]] = {}
    spread: dict[int, bool] = {}
    seen = 0
    for count in COUNTS:
        web = Web(sources, items, pages)
        prefix = f"{run}-ing{count}"
        stream = f"{prefix}:articles"
        with serve(web) as port:
            config = services.logs / f"sources-{count}.toml"
            config.write_text(sources_toml(sources, port), encoding="utf-8")
            agents = [f"bench-replica-{n}" for n in range(count)]
            for agent in agents:
                services.start(
                    "ingest",
                    f"{prefix}-{agent}",
                    {
                        **_prefixes(prefix),
                        "CARAVAN_INGEST_SOURCES": str(config),
                        "CARAVAN_INGEST_LEASE_SECONDS": str(INGEST_LEASE),
                        "CARAVAN_INGEST_HOST_DELAY": "0",
                        "CARAVAN_INGEST_HOST_CONCURRENCY": "16",
                        "CARAVAN_FETCH_ALLOW": "127.0.0.1",
                        "CARAVAN_USER_AGENT": agent,
                    },
                )
            deadline = time.monotonic() + 90
            while (
                not (
                    spread_now := evenly_spread(
                        web.latest_fetcher(time.monotonic() - INGEST_INTERVAL * 1.5),
                        agents,
                        sources,
                    )
                )
                and time.monotonic() < deadline
            ):
                await _poll(services, 0.2)
            spread[count] = spread_now
            before = tree_usage(services.pids())
            peak = before.rss_bytes
            started, server_cpu, machine = time.monotonic(), time.process_time(), busy_seconds()
            web.filled = True
            while await redis.xlen(stream) < sources * items:
                await _poll(services, 0.2)
                peak = max(peak, tree_usage(services.pids()).rss_bytes)
            elapsed = time.monotonic() - started
            cpu = tree_usage(services.pids()).cpu_seconds - before.cpu_seconds
            server_cpu = time.process_time() - server_cpu
            machine = busy_seconds() - machine
            first, last = await _first_and_last_ms(redis, stream)
            rates[count] = (sources * items - 1) / max(last - first, 1) * 1000
            usage[count] = {
                "articles_per_s_per_replica": round(rates[count] / count, 1),
                # From filling the feeds to the last entry, the services and their workers.
                "cpu_s_per_article": round(cpu / (sources * items), 4),
                "cores_used": round(cpu / elapsed, 2),
                "articles_per_core_s": round(sources * items / cpu, 1),
                "peak_rss_mib": round(peak / (1 << 20)),
                # What else ran meanwhile: this process (the loopback server), and every
                # process of the machine (the other helpers', Redis, ...) in cores.
                "loopback_server_cores": round(server_cpu / elapsed, 2),
                "machine_cores_busy": round(machine / elapsed, 2),
            }
            services.stop()
        if count == 1:
            seen = await _mean_memory(redis, f"{prefix}:ingest:seen:*")
        print(f"ingest x{count}: {rates[count]:.1f} articles/s, {usage[count]}", file=sys.stderr)
    return {
        "sources": sources,
        "items_per_source": items,
        "articles": sources * items,
        "articles_per_s": {k: round(v, 1) for k, v in rates.items()},
        "ratio": ratios(rates),
        # Per replica, per core (the CPU the ingest processes and their parse workers
        # used, from /proc) and peak resident memory of them all (sampled every 0.2 s).
        "usage": usage,
        "leases_spread_before_start": spread,
        # What ingest remembers of each published article (CARAVAN_INGEST_STATE_TTL_DAYS).
        "redis_bytes_per_seen_article": seen,
        "politeness": {"CARAVAN_INGEST_HOST_DELAY": 0, "CARAVAN_INGEST_HOST_CONCURRENCY": 16},
    }


async def _mean_memory(redis: Redis, pattern: str) -> int:
    keys = [key async for key in redis.scan_iter(match=pattern, count=1000)]
    sizes = [await redis.memory_usage(key, samples=0) or 0 for key in keys]
    return round(sum(sizes) / max(1, len(sizes)))


async def _first_and_last_ms(redis: Redis, stream: str) -> tuple[int, int]:
    first, last = await redis.xrange(stream, count=1), await redis.xrevrange(stream, count=1)
    if not first or not last or first[0][0] is None or last[0][0] is None:
        raise RuntimeError(f"{stream} is empty")
    return entry_ms(first[0][0]), entry_ms(last[0][0])


# --- freshness -------------------------------------------------------------------------


async def freshness(
    services: Services,
    es: AsyncElasticsearch,
    redis: Redis,
    run: str,
    payloads: list[tuple[str, str]],
    rate: float,
    every: int,
    poll_interval: float,
) -> dict[str, Any]:
    """`payloads`: (document id, event JSON), published at `rate` per second."""
    prefix = f"{run}-fresh"
    alias = IndexNames(f"{prefix}-").articles
    await _start_indexers(services, prefix, 1)
    settings = await es.indices.get_settings(index=alias, name="index.refresh_interval")
    refresh = next(iter(settings.values()))["settings"]["index"]["refresh_interval"]
    outstanding: dict[str, float] = {}
    latencies: list[float] = []
    published = asyncio.Event()
    achieved: list[float] = []  # the rate the producer kept up

    async def produce() -> None:
        tick = 0.05
        per_tick = max(1, round(rate * tick))
        started = time.monotonic()
        for n, start in enumerate(range(0, len(payloads), per_tick)):
            # Absolute deadlines: a slow tick does not lower the rate.
            await asyncio.sleep(max(0.0, started + n * tick - time.monotonic()))
            now = time.monotonic()
            async with redis.pipeline(transaction=False) as pipe:
                for index, (doc_id, payload) in enumerate(
                    payloads[start : start + per_tick], start
                ):
                    pipe.xadd(f"{prefix}:articles", {"__data__": payload})
                    if index % every == 0:
                        outstanding[doc_id] = now
                await pipe.execute()
        achieved.append(len(payloads) / (time.monotonic() - started))
        published.set()

    async def watch() -> None:
        while not published.is_set() or outstanding:
            services.check()
            asked = time.monotonic()
            ids = list(outstanding)
            if ids:
                found = await es.search(
                    index=alias,
                    query={"ids": {"values": ids}},
                    size=len(ids),
                    source=False,
                    filter_path=["hits.hits._id"],
                )
                for hit in found.body.get("hits", {}).get("hits", []):
                    latencies.append(asked - outstanding.pop(hit["_id"]))
            await asyncio.sleep(max(0.0, asked + poll_interval - time.monotonic()))

    await asyncio.gather(produce(), watch())
    services.stop()
    interval = _seconds(refresh)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"freshness: p50 {p50:.3f} s, p99 {p99:.3f} s (refresh {refresh})", file=sys.stderr)
    return {
        "rate_per_s": rate,
        "published_per_s": round(achieved[0], 1),
        "events": len(payloads),
        "sampled": len(latencies),
        "poll_interval_s": poll_interval,
        "refresh_interval": refresh,
        "p50_s": round(p50, 3),
        "p99_s": round(p99, 3),
        "max_s": round(max(latencies), 3),
        "p50_per_refresh_interval": round(p50 / interval, 2),
        "p99_per_refresh_interval": round(p99 / interval, 2),
    }


def _seconds(interval: str) -> float:
    """An Elasticsearch time value in seconds ("1s", "500ms", "2m")."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", interval)
    if match is None:
        raise ValueError(f"not a time value: {interval}")
    return float(match[1]) * {"ms": 0.001, "s": 1.0, "m": 60.0}[match[2]]


# --- the run ---------------------------------------------------------------------------


async def cleanup(es: AsyncElasticsearch | None, redis: Redis, run: str) -> None:
    """The run's keys, and its indices when a part made some (`es`)."""
    if es is not None:
        await drop_namespace(es, redis, f"{run}-*", f"{run}-*")
        return
    names = [key async for key in redis.scan_iter(match=f"{run}-*")]
    if names:
        await redis.delete(*names)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    samples = sample_articles(SAMPLES)
    events = list(generate(samples, args.events if "indexer" in args.parts else 1))
    payloads = [e.model_dump_json() for e in events]
    fresh_count = round(args.rate * args.duration) if "freshness" in args.parts else 0
    fresh_events = list(generate(samples, fresh_count, seed=13))
    fresh = [(e.idempotency_key, e.model_dump_json()) for e in fresh_events]
    run = f"bench-scaling-{uuid4().hex[:8]}"
    es = make_elasticsearch(ElasticsearchSettings())
    redis = make_redis(RedisSettings())
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "mean_event_bytes": round(sum(map(len, payloads)) / len(payloads)),
    }
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as logs:
        services = Services(Path(logs))
        try:
            if "indexer" in args.parts:
                async with asyncio.timeout(PART_TIMEOUT):
                    result["indexer"] = await indexer_throughput(services, es, redis, run, payloads)
            if "ingest" in args.parts:
                async with asyncio.timeout(PART_TIMEOUT):
                    result["ingest"] = await ingest_throughput(
                        services, redis, run, args.sources, args.items
                    )
            if "freshness" in args.parts:
                async with asyncio.timeout(PART_TIMEOUT + args.duration):
                    result["freshness"] = await freshness(
                        services,
                        es,
                        redis,
                        run,
                        fresh,
                        args.rate,
                        args.sample_every,
                        args.poll_interval,
                    )
        except TimeoutError:
            services.report_logs()
            raise
        finally:
            services.stop()
            await cleanup(es if PARTS_ON_ELASTICSEARCH & set(args.parts) else None, redis, run)
            await es.close()
            await redis.aclose()
    result["load_average_after"] = os.getloadavg()
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="which parts to run (ingest alone needs no Elasticsearch)",
    )
    parser.add_argument("--events", type=int, default=20_000, help="article events per indexer run")
    parser.add_argument("--sources", type=int, default=60, help="loopback feeds")
    parser.add_argument("--items", type=int, default=10, help="articles per feed")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="events per second of the freshness part"
    )
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds the freshness part publishes"
    )
    parser.add_argument(
        "--sample-every", type=int, default=4, help="freshness: search for every n-th event"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.05,
        help="freshness: seconds between searches (the measurement's resolution)",
    )
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result, indent=2))
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"scaling-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    cli()
