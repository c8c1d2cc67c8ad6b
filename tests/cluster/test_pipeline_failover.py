"""The whole pipeline on Redis Cluster loses the primary of its slot while ingest publishes.

Ingest (loopback feeds), the rate feed (a loopback bank), two indexers and the
query service run with REDIS_CLUSTER=true and one hash-tagged prefix, so every
key of the deployment lives in one slot. In the middle of ingest's burst that
slot's primary is killed with SIGKILL. The services follow the promoted replica
by themselves; what the old primary had not replicated is lost together with
ingest's memory of it (one slot, one ordered replication stream), so the next
poll publishes it again: every article arrives, duplicates are absorbed by _id.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from elasticsearch import Elasticsearch
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from tests.cluster.conftest import REDIS_PORT as PORT
from tests.conftest import REALDATA, REPO
from tests.faults.conftest import SCRIPTS, duplicates, report
from tests.loopback import LoopbackServer, static
from tests.processes import free_port, stop_processes
from tests.waiting import wait_for

pytestmark = pytest.mark.cluster

SOURCES = 30
ITEMS = 100  # a source's max_items by default
INTERVAL = 4.0
LEASE = 4.0
CBR = REALDATA / "cbr-xml-daily-2023-09-27.xml"
FIRST_DAY, NEXT_DAY = "2023-09-27", "2023-09-28"


def _feed(source: int, port: int) -> bytes:
    # Every item links to the site's home page: ingest keys it by guid and
    # publishes it from the feed's fields, fetching no page.
    items = "".join(
        f"<item><title>Caravan failover item {source}-{n}</title>"
        f"<link>http://127.0.0.1:{port}/home</link><guid>item-{source}-{n}</guid>"
        f"<description>Body of item {n} of source {source}.</description></item>"
        for n in range(ITEMS)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>s{source}</title>'
        f"<link>http://127.0.0.1:{port}/</link><description>d</description>"
        f"{items}</channel></rss>"
    ).encode()


def _next_day(document: bytes) -> bytes:
    """The bank's document of the day after, the same rates: new quotes, no jump."""
    return document.replace(b'Date="27.09.2023"', b'Date="28.09.2023"')


class Pipeline:
    def __init__(self, url: str, workdir: Path) -> None:
        self.workdir = workdir
        self.token = uuid4().hex[:10]
        self.prefix = f"{{pipe-{self.token}}}:"  # one hash tag: one slot for every key
        self.index_prefix = f"pipe-{self.token}-"
        self.client = RedisCluster.from_url(url)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.server = LoopbackServer()
        for n in range(SOURCES):
            self.server.routes[f"/feed/{n}"] = static(
                _feed(n, self.server.port), "application/rss+xml"
            )
        self.server.routes["/cbr.xml"] = static(CBR.read_bytes(), "application/xml")
        self.server.start()
        self.sources = workdir / "sources.toml"
        self.sources.write_text(
            "".join(
                f'[[sources]]\nname = "s{n}"\nurl = "{self.server.url(f"/feed/{n}")}"\n'
                f"interval = {INTERVAL}\n\n"
                for n in range(SOURCES)
            )
        )
        self.rates = workdir / "rates.toml"
        # The bank is every currency's primary, so its quotes reach the live ticker.
        self.rates.write_text(
            "[primary]\n"
            + "".join(f'{c} = "cbr"\n' for c in ("KGS", "KZT", "TJS", "UZS", "TMT"))
            + f'[[providers]]\nname = "cbr"\nkind = "cbr"\nurl = "{self.server.url("/cbr.xml")}"\n'
            'timezone = "Europe/Moscow"\ninterval = 1\n'
        )
        self.query_port = free_port()

    @property
    def stream(self) -> str:
        return f"{self.prefix}articles"

    def env(self, **extra: str) -> dict[str, str]:
        # Every node as a seed: the one named first may be the one that dies.
        seeds = ",".join(f"redis://127.0.0.1:{PORT + n}/0" for n in range(6))
        return {
            **os.environ,
            "REDIS_URL": seeds,
            "REDIS_CLUSTER": "true",
            "CARAVAN_STREAM_PREFIX": self.prefix,
            "CARAVAN_INDEX_PREFIX": self.index_prefix,
            "CARAVAN_HEALTH_PORT": str(free_port()),
            "CARAVAN_LOG_FORMAT": "console",
            "CARAVAN_FETCH_ALLOW": "127.0.0.1",
            **extra,
        }

    def start(self, name: str, service: str, **extra: str) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            cwd=REPO,
            env=self.env(**extra),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_all_but_ingest(self) -> None:
        for name in ("a", "b"):
            self.start(
                f"indexer-{name}",
                "indexer",
                CARAVAN_INDEXER_CONSUMER=name,
                CARAVAN_INDEXER_BATCH_SIZE="100",
                CARAVAN_INDEXER_BLOCK_MS="100",
                CARAVAN_INDEXER_CLAIM_IDLE_MS="1000",
                CARAVAN_INDEXER_RETRY_BASE_DELAY="0.05",
                CARAVAN_INDEXER_RETRY_MAX_DELAY="1",
            )
        self.start(
            "ratefeed",
            "ratefeed",
            CARAVAN_RATEFEED_PROVIDERS=str(self.rates),
            CARAVAN_RATEFEED_LEASE_SECONDS=str(LEASE),
            CARAVAN_RATEFEED_HOST_DELAY="0",
        )
        self.start(
            "query",
            "query",
            CARAVAN_QUERY_PORT=str(self.query_port),
            CARAVAN_QUERY_RATE_LIMIT="0",
            CARAVAN_QUERY_CACHE_SECONDS="0",
        )

    def start_ingest(self) -> None:
        self.start(
            "ingest",
            "ingest",
            CARAVAN_INGEST_SOURCES=str(self.sources),
            CARAVAN_INGEST_LEASE_SECONDS=str(LEASE),
            CARAVAN_INGEST_HOST_DELAY="0",
            CARAVAN_INGEST_HOST_CONCURRENCY="16",
        )

    def alive(self) -> bool:
        return not self.stopped()

    def stopped(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def primary_port(self) -> int:
        self.client.nodes_manager.initialize()
        return int(self.client.get_node_from_key(self.stream).port)  # type: ignore[no-untyped-call]

    def published(self) -> int:
        try:
            return int(self.client.xlen(self.stream))
        except (RedisError, RedisClusterException):
            return -1

    def pending(self) -> int:
        try:
            return int(self.client.xpending(self.stream, "indexer")["pending"])
        except (RedisError, RedisClusterException):
            return -1

    def es(self) -> Elasticsearch:
        return Elasticsearch(os.environ["ELASTICSEARCH_URL"], request_timeout=30)

    def documents(self, alias: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every document's _id and `fields` (duplicates would show)."""
        es = self.es()
        if not es.indices.exists_alias(name=self.index_prefix + alias):
            return []
        es.indices.refresh(index=self.index_prefix + alias)
        hits = es.search(index=self.index_prefix + alias, size=10_000, source_includes=fields)[
            "hits"
        ]["hits"]
        return [{"_id": hit["_id"], **hit["_source"]} for hit in hits]

    def count(self, alias: str) -> int:
        es = self.es()
        if not es.indices.exists_alias(name=self.index_prefix + alias):
            return 0
        es.indices.refresh(index=self.index_prefix + alias)
        return int(es.count(index=self.index_prefix + alias)["count"])

    def search(self, q: str) -> int | None:
        """Hits of a search through the query service; None while it does not answer."""
        try:
            answer = httpx.get(
                f"http://127.0.0.1:{self.query_port}/api/search", params={"q": q}, timeout=10
            )
        except httpx.HTTPError:
            return None
        return int(answer.json()["total"]) if answer.status_code == 200 else None

    def close(self) -> None:
        stop_processes(list(self.processes.values()))
        self.server.stop()
        for key in self.client.scan_iter(match=f"{self.prefix}*"):
            self.client.delete(key)
        self.client.close()
        es = self.es()
        indices = es.indices.get(index=f"{self.index_prefix}*", allow_no_indices=True)
        if indices:
            es.indices.delete(index=",".join(indices))


class Ticker:
    """The query service's live ticker, read as a browser page does (SSE), in a thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lines: list[str] = []
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        # The connection ends with the query service, when the test stops it.
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.Client(timeout=httpx.Timeout(5, read=None)) as client,
            client.stream("GET", self.url) as answer,
        ):
            for line in answer.iter_lines():
                self.connected.set()
                self.lines.append(line)
                if self._stop.is_set():
                    return

    def quotes_of(self, day: str) -> list[str]:
        return [
            line
            for line in list(self.lines)
            if line.startswith("data:") and f'"as_of": "{day}"' in line
        ]

    def stop(self) -> None:
        self._stop.set()


@pytest.fixture
def pipeline(redis_cluster: str, tmp_path: Path) -> Iterator[Pipeline]:
    fixture = Pipeline(redis_cluster, tmp_path)
    yield fixture
    fixture.close()


def test_every_service_follows_the_promoted_replica_and_nothing_is_lost(
    pipeline: Pipeline,
) -> None:
    expected = SOURCES * ITEMS
    pipeline.start_all_but_ingest()
    wait_for(
        lambda: pipeline.count("quotes") > 0 and pipeline.search("caravan") == 0,
        120,
        "the first quotes indexed and the query service answering",
    )
    ticker = Ticker(f"http://127.0.0.1:{pipeline.query_port}/api/quotes/stream")
    assert ticker.connected.wait(30), "the live ticker did not answer"

    pipeline.start_ingest()
    wait_for(lambda: pipeline.published() >= expected // 10, 120, "ingest's burst to start")
    victim = pipeline.primary_port()
    node = str(victim - PORT + 1)
    script = str(SCRIPTS / "redis-cluster.sh")
    subprocess.run([script, "kill-node", "cluster", str(PORT), node], check=True)
    killed_at = time.monotonic()
    assert pipeline.count("articles") < expected, "killed too late to prove anything"

    wait_for(lambda: pipeline.primary_port() != victim, 60, "a replica to be promoted")
    promoted_in = time.monotonic() - killed_at
    # What a StatefulSet does: the node comes back, as the promoted one's replica.
    subprocess.run([script, "start-node", "cluster", str(PORT), node], check=True)

    # The bank publishes the next day: the quotes reach the open page after the failover.
    pipeline.server.routes["/cbr.xml"] = static(_next_day(CBR.read_bytes()), "application/xml")
    wait_for(
        lambda: bool(ticker.quotes_of(NEXT_DAY)) or not pipeline.alive(),
        120,
        "the live ticker to deliver a quote published after the failover",
    )
    assert pipeline.alive(), f"a service stopped in the failover: {pipeline.stopped()}"
    ticker_in = time.monotonic() - killed_at
    ticker.stop()
    wait_for(
        lambda: (
            (pipeline.count("articles") >= expected and pipeline.pending() == 0)
            or not pipeline.alive()
        ),
        300,
        "every article indexed",
    )
    caught_up_in = time.monotonic() - killed_at

    assert pipeline.alive(), f"a service did not follow the promoted replica: {pipeline.stopped()}"
    articles = pipeline.documents("articles", ["canonical_url"])
    ids = sorted(doc["_id"] for doc in articles)
    guids = sorted(doc["canonical_url"].rsplit("#item=", 1)[1] for doc in articles)
    assert guids == sorted(f"item-{s}-{n}" for s in range(SOURCES) for n in range(ITEMS))
    assert duplicates(ids) == 0
    quotes = pipeline.documents("quotes", ["base", "as_of"])
    bases = {
        day: sorted(q["base"] for q in quotes if q["as_of"] == day) for day in (FIRST_DAY, NEXT_DAY)
    }
    assert bases[FIRST_DAY]
    assert bases[NEXT_DAY] == bases[FIRST_DAY]
    assert len(quotes) == 2 * len(bases[FIRST_DAY])
    assert pipeline.client.xlen(f"{pipeline.prefix}deadletters") == 0
    assert (pipeline.search("caravan") or 0) == expected
    republished = pipeline.published() - expected
    report(
        f"redis cluster: slot primary killed mid-burst under the whole pipeline (promoted "
        f"in {promoted_in:.1f} s, live ticker after {ticker_in:.1f} s, {republished} "
        "stream entries republished)",
        sent=expected,
        indexed=len(ids),
        dead_lettered=0,
        duplicated=duplicates(ids),
        recovered_in=caught_up_in,
    )
    print(
        f"promoted in {promoted_in:.1f} s; ticker after {ticker_in:.1f} s; "
        f"caught up in {caught_up_in:.1f} s; {republished} entries republished"
    )
