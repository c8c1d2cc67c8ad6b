"""The hostile corpus against the running services, not only their functions.

The ingest and rate-feed processes are pointed at a loopback server that answers
with each hostile case of the suite next to a well-behaved source. They must
publish the good source's data, fail the hostile ones with a counted reason, keep
answering health checks the whole time, and stay small.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import httpx
import pytest
from elasticsearch import AsyncElasticsearch
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from shared.streams import DATA_FIELD
from tests.conftest import REALDATA, REPO, Namespace, _require
from tests.hostile.corpus import DEEP_NEST, NEST_UNDER_VALUES, ONE_LONG_WORD, article
from tests.integration.conftest import dead_letters, published_articles
from tests.loopback import LoopbackServer, Reply, static
from tests.processes import free_port, stop_processes
from tests.streams import entries
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

RSS = "application/rss+xml"
HTML = "text/html; charset=utf-8"
ARTICLE = (REALDATA / "article-lsm-lv.html").read_bytes()
# Over the 3 MB cut, its scripts never closed: minutes of regex before.
SCRIPTS = (
    b"<html><head><title>Scripts</title></head><body>"
    + b"<script>" * 2000
    + b"<p>"
    + b"words and more words " * 160_000
    + b"</p></body></html>"
)
# The most a service may grow to: a gzip bomb inflated in memory took 3.26 GB.
MAX_RSS_KIB = 400 * 1024


@cache
def bomb() -> bytes:
    """256 MiB of zeros gzipped: about 250 KB on the wire, 25 times the body limit inflated."""
    compressor = zlib.compressobj(9, wbits=16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1 << 20)
    return b"".join(
        [
            compressor.compress(b"<rss>"),
            *(compressor.compress(chunk) for _ in range(256)),
            compressor.flush(),
        ]
    )


@cache
def stacked() -> bytes:
    """The bomb gzipped again, as `Content-Encoding: gzip, gzip` (a few KB)."""
    return gzip.compress(bomb(), 9)


def _feed(web: LoopbackServer, *items: tuple[str, str]) -> bytes:
    entries_xml = "".join(
        f"<item><title>{title}</title><link>{web.url(path)}</link>"
        f"<description>{title}, the feed's own words.</description></item>"
        for title, path in items
    )
    return f"<rss><channel><title>t</title>{entries_xml}</channel></rss>".encode()


class HealthWatch:
    """Asks a service for /healthz over and over in a thread; counts what went unanswered."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answered = 0
        self.unanswered: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> HealthWatch:
        wait_for(self._healthy, 60, f"{self.url} to answer")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            try:
                httpx.get(self.url, timeout=5).raise_for_status()
                self.answered += 1
            except httpx.HTTPError as exc:
                self.unanswered.append(repr(exc))


def _max_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _metric(url: str, name: str, **labels: str) -> float:
    text = httpx.get(url, timeout=5, follow_redirects=True).text
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and all(w in line for w in wanted)
    )


def _survives(
    process: subprocess.Popen[bytes], url: str, done: Callable[[], bool], what: str
) -> None:
    """Wait for `done`, the service answering /healthz all along; then it is still
    running, and it never grew past MAX_RSS_KIB."""
    with HealthWatch(f"{url}/healthz") as health:
        wait_for(done, 120, what)
        seen = health.answered
        wait_for(lambda: health.answered > seen, 30, "health after that")
    assert process.poll() is None, "the service exited"
    assert health.unanswered == []
    assert _max_rss_kib(process.pid) < MAX_RSS_KIB


@pytest.fixture
def hosts() -> Iterator[dict[str, LoopbackServer]]:
    """A server (so a host, for the fetcher's per-host politeness) per source."""
    servers = {name: LoopbackServer() for name in ("good", "stacked", "bomb", "later", "digit")}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


def _start(service: str, tmp_path: Path, **variables: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "CARAVAN_HEALTH_PORT": str(port),
        "CARAVAN_FETCH_ALLOW": "127.0.0.1",
        **variables,
    }
    log = (tmp_path / f"{service}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "services", service],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


async def test_ingest_publishes_the_good_source_and_survives_the_hostile_ones(
    hosts: dict[str, LoopbackServer], redis: Redis, namespace: Namespace, tmp_path: Path
) -> None:
    good = hosts["good"]
    good.routes["/good.xml"] = static(
        _feed(good, ("Good news", "/a/good"), ("Scripts", "/a/scripts")), RSS
    )
    good.routes["/a/good"] = static(ARTICLE, HTML)
    good.routes["/a/scripts"] = static(SCRIPTS, HTML)
    hosts["stacked"].routes["/stacked.xml"] = lambda _: Reply(
        200, stacked(), {"Content-Type": RSS, "Content-Encoding": "gzip, gzip"}
    )
    hosts["bomb"].routes["/bomb.xml"] = lambda _: Reply(
        200, bomb(), {"Content-Type": RSS, "Content-Encoding": "gzip"}
    )
    hosts["later"].routes["/later.xml"] = lambda _: Reply(503, b"", {"Retry-After": "99999999999"})
    hosts["digit"].routes["/digit.xml"] = lambda _: Reply(429, b"", {"Retry-After": "²"})
    sources = tmp_path / "sources.toml"
    sources.write_text(
        "".join(
            f'[[sources]]\nname = "{name}"\nurl = "{server.url(f"/{name}.xml")}"\n'
            for name, server in hosts.items()
        ),
        encoding="utf-8",
    )
    process, url = _start(
        "ingest",
        tmp_path,
        CARAVAN_INGEST_SOURCES=str(sources),
        CARAVAN_INGEST_HOST_DELAY="0",
        CARAVAN_INGEST_RETRIES="1",
    )
    try:
        # State, not time: every source has been polled once.
        _survives(
            process,
            url,
            lambda: _metric(f"{url}/metrics", "caravan_ingest_polls_total") >= 5,
            "every source polled",
        )
        for name in ("stacked", "bomb", "later", "digit"):
            assert (
                _metric(f"{url}/metrics", "caravan_ingest_poll_errors_total", source=name) >= 1
            ), name
    finally:
        stop_processes([process])
    titles = sorted(event.title for event in await published_articles(redis, namespace))
    assert titles[0].startswith("Norvēģijā")  # the good page, extracted
    assert "Scripts" in titles  # the poisoned page, from its feed item, bounded
    assert len(titles) == 2


async def test_ratefeed_publishes_the_good_provider_and_survives_the_hostile_ones(
    hosts: dict[str, LoopbackServer], redis: Redis, namespace: Namespace, tmp_path: Path
) -> None:
    nest = tmp_path / "nest.json"
    nest.write_bytes(b"[" * 200_000)
    busy, bombing = hosts["later"], hosts["bomb"]
    busy.routes["/busy"] = lambda _: Reply(503, b"", {"Retry-After": "²"})
    bombing.routes["/bomb"] = lambda _: Reply(200, stacked(), {"Content-Encoding": "gzip, gzip"})
    providers = tmp_path / "rates.toml"
    providers.write_text(
        f"""
[[providers]]
name = "nest"
kind = "cbu"
url = "{nest}"
[[providers]]
name = "busy"
kind = "cbr"
url = "{busy.url("/busy")}"
[[providers]]
name = "bomb"
kind = "nbk"
url = "{bombing.url("/bomb")}"
[[providers]]
name = "cbu"
kind = "cbu"
url = "{REALDATA / "cbu-uz-rates-2022-04-11.json"}"
""",
        encoding="utf-8",
    )
    process, url = _start(
        "ratefeed",
        tmp_path,
        CARAVAN_RATEFEED_PROVIDERS=str(providers),
        CARAVAN_RATEFEED_HOST_DELAY="0",
        CARAVAN_RATEFEED_RETRIES="0",
    )
    try:
        _survives(
            process,
            url,
            lambda: all(
                _metric(f"{url}/metrics", "caravan_ratefeed_poll_errors_total", provider=name) >= 1
                for name in ("nest", "busy", "bomb")
            ),
            "each hostile provider failed once",
        )
    finally:
        stop_processes([process])
    quotes = await entries(redis, namespace.streams.quotes)
    assert len(quotes) == 5  # the good provider's five currencies


async def test_the_indexer_indexes_a_one_word_article_and_dead_letters_a_deep_nest(
    redis: Redis, es: AsyncElasticsearch, namespace: Namespace, tmp_path: Path
) -> None:
    articles = namespace.streams.articles
    await redis.xadd(articles, {DATA_FIELD: article(ONE_LONG_WORD, "long").model_dump_json()})
    await redis.xadd(articles, {DATA_FIELD: DEEP_NEST})
    await redis.xadd(articles, {DATA_FIELD: NEST_UNDER_VALUES})
    await redis.xadd(articles, {DATA_FIELD: article("A plain article.", "plain").model_dump_json()})
    count = f"{_require('ELASTICSEARCH_URL')}/{namespace.index_prefix}articles/_count"
    dead = SyncRedis.from_url(_require("REDIS_URL"))

    def settled() -> bool:
        response = httpx.get(count, timeout=5)
        indexed = response.json().get("count", 0) if response.status_code == 200 else 0
        return bool(indexed == 2 and dead.xlen(namespace.streams.deadletters) == 2)

    process, url = _start("indexer", tmp_path)
    try:
        _survives(process, url, settled, "two articles indexed, two entries dead-lettered")
    finally:
        stop_processes([process])
        dead.close()
    letters = {letter.payload: letter for letter in await dead_letters(redis, namespace)}
    # A dead letter each, with the reason and the original bytes: refused unparsed, as
    # 200,000 values are more than any event has; or by the parser's depth bound.
    assert letters[DEEP_NEST].error_class == "TooManyValues"
    assert "200000 JSON values" in letters[DEEP_NEST].error_message
    assert letters[NEST_UNDER_VALUES].error_class == "ValidationError"
    assert "recursion limit" in letters[NEST_UNDER_VALUES].error_message
