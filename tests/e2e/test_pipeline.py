"""End to end: each service its own process, as deployed; only Redis and Elasticsearch between them.

A real feed and a real rate file go in through `caravan ingest` and `caravan
ratefeed`; the query API, over HTTP, returns the article for a word of its title
and the five quotes computed exactly from the file.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis

from tests.conftest import REALDATA, REPO, Namespace
from tests.processes import caravan, free_port, stop_processes

pytestmark = pytest.mark.e2e

CARAVAN = [sys.executable, "-m", "services"]
CBR_FILE = REALDATA / "cbr-xml-daily-2023-09-27.xml"


@pytest.fixture
def environment(namespace: Namespace, redis: Redis, es: AsyncElasticsearch) -> dict[str, str]:
    # `redis` and `es` clean the namespace up afterwards.
    return {
        **os.environ,
        "CARAVAN_QUERY_PORT": str(free_port()),
        "CARAVAN_HEALTH_PORT": str(free_port()),
        "CARAVAN_INDEXER_STATS_INTERVAL": "0.5",
        "CARAVAN_INDEXER_BLOCK_MS": "100",
        "CARAVAN_LOG_FORMAT": "json",
    }


@pytest.fixture
def services(environment: dict[str, str]) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    running = {
        name: subprocess.Popen(
            [*CARAVAN, name],
            env=environment,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for name in ("indexer", "query")
    }
    yield running
    stop_processes(running.values())


def eventually(probe: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = probe()
        except (httpx.HTTPError, AssertionError, KeyError):
            if time.monotonic() > deadline:
                raise
        else:
            return result
        time.sleep(0.3)


def _expected_rate(code: str) -> Decimal:
    text = CBR_FILE.read_text(encoding="utf-8")

    def per_unit(char_code: str) -> Decimal:
        match = re.search(
            rf"<CharCode>{char_code}</CharCode>\s*<Nominal>(\d+)</Nominal>"
            rf"\s*<Name>[^<]*</Name>\s*<Value>([\d,]+)</Value>",
            text,
        )
        assert match
        return Decimal(match.group(2).replace(",", ".")) / Decimal(match.group(1))

    return per_unit(code) / per_unit("USD")


def test_feed_and_rates_in_search_and_quotes_out(
    environment: dict[str, str], services: dict[str, subprocess.Popen[bytes]]
) -> None:
    api = f"http://127.0.0.1:{environment['CARAVAN_QUERY_PORT']}"
    ingested = caravan(environment, "ingest", "--source", str(REALDATA / "feed-andijonfk-uz.xml"))
    rated = caravan(environment, "ratefeed", "--source", str(CBR_FILE))
    assert ingested.returncode == 0, ingested.stderr
    assert "2 articles published" in ingested.stdout
    assert rated.returncode == 0, rated.stderr

    def article_found() -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{api}/api/search", params={"q": "Xorazm"}).json()
        assert body["total"] == 1
        return body

    def quotes_found() -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{api}/api/quotes/latest").json()
        assert len(body["quotes"]) == 5
        return body

    found = eventually(article_found)
    assert found["results"][0]["title"] == "Bugun Bobur Arenada: Andijon — Xorazm"
    assert (found["from"], found["to"]) == (1, 1)
    quotes = eventually(quotes_found)
    for quote in quotes["quotes"]:
        # The API answers CARAVAN_QUERY_RATE_DIGITS (10) significant digits; the
        # index keeps the exact quotient.
        expected = Context(prec=10, rounding=ROUND_HALF_EVEN).plus(_expected_rate(quote["base"]))
        assert Decimal(quote["rate"]) == expected, quote["base"]
    eventually(lambda: httpx.get(f"{api}/readyz").raise_for_status())

    searched = caravan(environment, "search", "Xorazm")
    assert searched.stdout.splitlines()[0] == "Viewing results 1 - 1 of 1"

    indexer = f"http://127.0.0.1:{environment['CARAVAN_HEALTH_PORT']}"

    def indexer_settled() -> dict[str, Any]:
        ready: dict[str, Any] = httpx.get(f"{indexer}/readyz").raise_for_status().json()
        assert ready["details"]["streams"]
        return ready

    ready = eventually(indexer_settled)
    assert ready["checks"] == {
        "redis": True,
        "elasticsearch": True,
        "indices": True,
        "writing": True,
    }
    assert all(s["pending"] == 0 for s in ready["details"]["streams"].values())
    metrics = httpx.get(f"{indexer}/metrics").text
    assert 'caravan_indexer_documents_total{index="' in metrics
    assert "caravan_stream_pending" in metrics


def test_bad_input_is_refused_clearly_and_the_indexer_goes_on(
    environment: dict[str, str],
    services: dict[str, subprocess.Popen[bytes]],
    namespace: Namespace,
) -> None:
    api = f"http://127.0.0.1:{environment['CARAVAN_QUERY_PORT']}"
    not_a_feed = caravan(environment, "ingest", "--source", str(CBR_FILE))
    not_rates = caravan(
        environment, "ratefeed", "--source", str(REALDATA / "feed-heise-developer.atom")
    )
    missing = caravan(environment, "ingest", "--source", "/nonexistent/feed.xml")
    assert (not_a_feed.returncode, not_rates.returncode, missing.returncode) == (2, 2, 2)
    assert "not a readable RSS/Atom feed" in not_a_feed.stderr
    assert "not a rates document of a known provider" in not_rates.stderr
    assert "No such file" in missing.stderr

    poison = subprocess.run(
        [
            "redis-cli",
            "-u",
            environment["REDIS_URL"],
            "XADD",
            namespace.streams.articles,
            "*",
            "__data__",
            '{"title": "no url"}',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    good = caravan(environment, "ingest", "--source", str(REALDATA / "feed-andijonfk-uz.xml"))
    assert good.returncode == 0

    def dead_lettered() -> str:
        listing = caravan(environment, "deadletters", "list").stdout
        assert poison.stdout.strip() in listing
        return listing

    def both_indexed() -> None:
        assert httpx.get(f"{api}/api/search").json()["total"] == 2

    listing = eventually(dead_lettered)
    assert "ValidationError" in listing
    assert "url: Field required" in listing
    eventually(both_indexed)
    assert services["indexer"].poll() is None


def test_a_one_off_ingest_with_a_source_it_cannot_read_exits_1(
    environment: dict[str, str], tmp_path: Path
) -> None:
    sources = tmp_path / "sources.toml"
    feed = REALDATA / "feed-andijonfk-uz.xml"
    sources.write_text(
        f'[[sources]]\nname = "andijon"\nurl = "{feed}"\n'
        '[[sources]]\nname = "gone"\nurl = "/nonexistent/feed.xml"\n',
        encoding="utf-8",
    )
    done = caravan({**environment, "CARAVAN_INGEST_SOURCES": str(sources)}, "ingest", "--once")
    assert done.returncode == 1
    # The readable one is read and reported all the same.
    assert "andijon (feed): 2 articles published" in done.stdout
    assert "gone: failed" in done.stdout


def test_services_stop_cleanly_on_sigterm(
    services: dict[str, subprocess.Popen[bytes]], environment: dict[str, str]
) -> None:
    api = f"http://127.0.0.1:{environment['CARAVAN_QUERY_PORT']}"
    eventually(lambda: httpx.get(f"{api}/healthz").raise_for_status())
    # Ready once its indices exist, that is in its consumer loop: a stop now tests the loop's.
    health = f"http://127.0.0.1:{environment['CARAVAN_HEALTH_PORT']}"
    eventually(lambda: httpx.get(f"{health}/readyz").raise_for_status())
    for process in services.values():
        process.send_signal(signal.SIGTERM)
    codes = {name: process.wait(timeout=30) for name, process in services.items()}
    logs = {name: p.stdout.read().decode() for name, p in services.items() if p.stdout}

    assert codes["indexer"] == 0
    assert '"event": "indexer stopped"' in logs["indexer"]
    # uvicorn finishes its graceful shutdown, then re-raises SIGTERM on itself.
    assert codes["query"] in (0, -signal.SIGTERM)
    assert '"event": "Application shutdown complete."' in logs["query"]
