"""Fault tests run against their own Redis and Elasticsearch, which they stop and start.

Instance "faults": Redis on 6392 (AOF on), Elasticsearch on 9292 with a small
indexing-pressure limit so that one oversized document is refused as a whole
request with 429, as a real cluster does under a document it cannot take.
A toxiproxy on 8492 (API) puts real TCP faults between a test's client and
either of them: the `redis_proxy` and `es_proxy` fixtures (see proxy.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import httpx
import pytest
import redis
from elasticsearch import Elasticsearch
from prometheus_client.parser import text_string_to_metric_families

from shared.events import ArticleEvent, content_hash
from tests.conftest import REPO
from tests.faults.proxy import Proxy, Toxiproxy
from tests.processes import free_port, stop_processes

SCRIPTS = REPO / "deploy" / "local"
REDIS_PORT = 6392
ES_PORT = 9292
ES_SETTINGS = "indexing_pressure.memory.limit: 2mb"
TOXIPROXY_PORT = 8492


@dataclass
class Servers:
    redis_url: str = f"redis://127.0.0.1:{REDIS_PORT}/0"
    es_url: str = f"http://127.0.0.1:{ES_PORT}"

    def elasticsearch(self, action: str) -> None:
        env = {**os.environ, "CARAVAN_ES_SETTINGS": ES_SETTINGS}
        subprocess.run(
            [str(SCRIPTS / "elasticsearch.sh"), action, "faults", str(ES_PORT)], check=True, env=env
        )

    def redis(self, action: str) -> None:
        subprocess.run([str(SCRIPTS / "redis.sh"), action, "faults", str(REDIS_PORT)], check=True)


@pytest.fixture(scope="package")
def servers() -> Iterator[Servers]:
    servers = Servers()
    servers.redis("start")
    servers.elasticsearch("start")
    yield servers
    servers.elasticsearch("stop")
    servers.redis("stop")


@pytest.fixture(scope="package")
def toxiproxy() -> Iterator[Toxiproxy]:
    script = str(SCRIPTS / "toxiproxy.sh")
    # The first start builds the server (about 40 s), once per machine.
    subprocess.run([script, "start", "faults", str(TOXIPROXY_PORT)], check=True)
    client = Toxiproxy(f"http://127.0.0.1:{TOXIPROXY_PORT}")
    yield client
    client.close()
    subprocess.run([script, "stop", "faults", str(TOXIPROXY_PORT)], check=True)


@pytest.fixture
def redis_proxy(servers: Servers, toxiproxy: Toxiproxy) -> Iterator[Proxy]:
    """A proxy of its own in front of the fault Redis; `listen` is where to connect."""
    proxy = toxiproxy.create(f"redis-{uuid4().hex[:10]}", f"127.0.0.1:{REDIS_PORT}")
    yield proxy
    toxiproxy.delete(proxy)


@pytest.fixture
def es_proxy(servers: Servers, toxiproxy: Toxiproxy) -> Iterator[Proxy]:
    """A proxy of its own in front of the fault Elasticsearch; `listen` is where to connect."""
    proxy = toxiproxy.create(f"es-{uuid4().hex[:10]}", f"127.0.0.1:{ES_PORT}")
    yield proxy
    toxiproxy.delete(proxy)


@dataclass
class Fixture:
    """One test's world: its namespace on the fault servers and its indexer processes."""

    servers: Servers
    workdir: Path
    token: str = field(default_factory=lambda: uuid4().hex[:10])
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    health_ports: dict[str, int] = field(default_factory=dict)

    @property
    def articles_stream(self) -> str:
        return f"faults-{self.token}:articles"

    @property
    def deadletters_stream(self) -> str:
        return f"faults-{self.token}:deadletters"

    @property
    def alias(self) -> str:
        return f"faults-{self.token}-articles"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_URL": self.servers.redis_url,
            "ELASTICSEARCH_URL": self.servers.es_url,
            "CARAVAN_STREAM_PREFIX": f"faults-{self.token}:",
            "CARAVAN_INDEX_PREFIX": f"faults-{self.token}-",
            "CARAVAN_HEALTH_PORT": str(free_port()),
            "CARAVAN_INDEXER_BLOCK_MS": "100",
            "CARAVAN_INDEXER_CLAIM_IDLE_MS": "1000",
            "CARAVAN_INDEXER_RETRY_BASE_DELAY": "0.05",
            "CARAVAN_INDEXER_RETRY_MAX_DELAY": "1",
            **extra,
        }

    def start_indexer(self, name: str, **extra: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"indexer-{name}.log").open("wb")
        env = self.env(CARAVAN_INDEXER_CONSUMER=name, **extra)
        self.health_ports[name] = int(env["CARAVAN_HEALTH_PORT"])
        process = subprocess.Popen(
            [sys.executable, "-m", "services.indexer"],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.processes.append(process)
        return process

    def readiness(self, name: str) -> dict[str, Any]:
        """The indexer's /readyz answer ({} while it does not answer yet)."""
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.health_ports[name]}/readyz", timeout=5)
        except httpx.HTTPError:
            return {}
        return cast("dict[str, Any]", answer.json())

    def hold(self, name: str) -> dict[str, Any] | None:
        return cast("dict[str, Any] | None", self.readiness(name).get("details", {}).get("hold"))

    def metric(self, name: str, metric: str, **labels: str) -> float:
        """Sum of one metric's samples with these labels, from the indexer's /metrics."""
        text = httpx.get(f"http://127.0.0.1:{self.health_ports[name]}/metrics", timeout=5).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == metric and labels.items() <= sample.labels.items():
                    total += sample.value
        return total

    def log_of(self, name: str) -> str:
        return (self.workdir / f"indexer-{name}.log").read_text(errors="replace")

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.servers.redis_url)

    def es(self) -> Elasticsearch:
        return Elasticsearch(self.servers.es_url, request_timeout=30)

    def publish(self, events: list[ArticleEvent]) -> list[str]:
        client = self.redis()
        with client.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(self.articles_stream, {"__data__": event.model_dump_json()})
            ids = pipe.execute()
        return [i.decode() for i in ids]

    def indexed_ids(self) -> list[str]:
        """Every _id in the index (sorted, duplicates kept, so a double would show)."""
        es = self.es()
        es.indices.refresh(index=self.alias)
        # A point in time: paging by `_doc` alone is not stable across a segment merge
        # between two pages, which would show a document twice and hide another.
        pit = es.open_point_in_time(index=self.alias, keep_alive="1m")["id"]
        found: list[str] = []
        after: list[Any] | None = None
        try:
            while True:
                page = es.search(
                    size=5000,
                    sort=["_shard_doc"],
                    source=False,
                    search_after=after,
                    pit={"id": pit, "keep_alive": "1m"},
                )
                hits = page["hits"]["hits"]
                if not hits:
                    return sorted(found)
                found.extend(hit["_id"] for hit in hits)
                after = hits[-1]["sort"]
        finally:
            es.close_point_in_time(id=pit)

    def count(self) -> int:
        es = self.es()
        if not es.indices.exists_alias(name=self.alias):
            return 0
        es.indices.refresh(index=self.alias)
        return int(es.count(index=self.alias)["count"])

    def pending(self) -> int:
        try:
            return int(self.redis().xpending(self.articles_stream, "indexer")["pending"])
        except redis.ResponseError:
            return 0

    def dead_letters(self) -> list[dict[str, Any]]:
        entries = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]", self.redis().xrange(self.deadletters_stream)
        )
        return [json.loads(fields[b"__data__"]) for _, fields in entries]


# Lines of each indexer's log shown with a failed scenario: its logs live in tmp_path,
# which later runs remove, and a failure seen once under the whole suite needs them.
LOG_TAIL_LINES = 60


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    fixture = getattr(item, "funcargs", {}).get("world")
    if report.when == "call" and report.failed and isinstance(fixture, Fixture):
        for name in fixture.health_ports:
            lines = fixture.log_of(name).splitlines()[-LOG_TAIL_LINES:]
            try:
                state = json.dumps(fixture.readiness(name).get("details"))
            except ValueError:  # an answer that is no JSON: the log says more
                state = "/readyz: no readable answer"
            report.sections.append((f"indexer {name}", "\n".join([state, *lines])))
    return report


@pytest.fixture
def world(servers: Servers, tmp_path: Path) -> Iterator[Fixture]:
    fixture = Fixture(servers, tmp_path)
    yield fixture
    stop_processes(fixture.processes)
    client = fixture.redis()
    keys = list(client.scan_iter(match=f"faults-{fixture.token}:*"))
    if keys:
        client.delete(*keys)
    es = fixture.es()
    indices = es.indices.get(index=f"faults-{fixture.token}-*", allow_no_indices=True)
    if indices:
        es.indices.delete(index=",".join(indices))


def articles(
    count: int, *, body_bytes: int = 1000, version_day: int = 1, prefix: str = "a"
) -> list[ArticleEvent]:
    sentence = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. "
    filler = (sentence * (body_bytes // len(sentence) + 1))[:body_bytes]
    fetched = datetime(2026, 1, version_day, tzinfo=UTC)
    return [
        ArticleEvent(
            source="faults",
            url=f"https://news.example/{prefix}/{n}",
            canonical_url=f"https://news.example/{prefix}/{n}",
            title=f"Article {n} of the fault tests",
            body=filler,
            fetched_at=fetched,
            content_hash=content_hash(f"Article {n}", filler),
        )
        for n in range(count)
    ]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    msg = f"no VmRSS for {pid}"
    raise LookupError(msg)


REPORT = REPO / "test-artifacts" / "fault-report.jsonl"


def report(
    scenario: str,
    *,
    sent: int,
    indexed: int,
    dead_lettered: int,
    duplicated: int,
    recovered_in: float | None,
    resent_stale: int = 0,
) -> None:
    """One row of the fault table (test-artifacts/fault-report.jsonl): what each scenario cost.

    `duplicated` counts documents stored twice; `resent_stale` the writes sent again
    and answered "already there" (a version conflict), which store nothing.
    """
    REPORT.parent.mkdir(exist_ok=True)
    row = {
        "scenario": scenario,
        "sent": sent,
        "indexed": indexed,
        "dead_lettered": dead_lettered,
        "duplicated": duplicated,
        "resent_stale": resent_stale,
        "recovered_in_s": None if recovered_in is None else round(recovered_in, 1),
    }
    with REPORT.open("a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


def duplicates(ids: list[str]) -> int:
    return len(ids) - len(set(ids))
