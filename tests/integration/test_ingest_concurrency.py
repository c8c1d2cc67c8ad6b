"""A feed's items read several at once, against a real HTTP server: the bound on
articles in flight, and each host's politeness (requests at once, Crawl-delay) held
whatever that bound. The server's page routes block until the test lets each request
go, so the tests synchronise on what is in flight, never on time."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.ingest.app import ingest_configured_once, ingest_once
from shared.settings import Settings
from tests.conftest import REALDATA, Namespace
from tests.integration.conftest import published_articles
from tests.loopback import Hit, LoopbackServer, Reply, Route, static
from tests.waiting import until

pytestmark = pytest.mark.integration

RSS = "application/rss+xml"
HTML = "text/html; charset=utf-8"
LSM_PAGE = (REALDATA / "article-lsm-lv.html").read_text(encoding="utf-8")
LSM_URL = "https://www.lsm.lv/raksts/zinas/arzemes/norvegija-pec-zemes-nogruvuma-pieci-bojagajusie.a387519/"


class Held:
    """Article pages whose requests wait, in the server's threads, to be let go one by one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens = threading.Semaphore(0)
        self.waiting = 0
        self.most = 0

    def route(self, body: bytes) -> Route:
        def answer(_: Hit) -> Reply:
            with self._lock:
                self.waiting += 1
                self.most = max(self.most, self.waiting)
            released = self._tokens.acquire(timeout=60)  # never hang the suite
            with self._lock:
                self.waiting -= 1
            return Reply(200 if released else 503, body, {"Content-Type": HTML})

        return answer

    def let_one_go(self) -> None:
        self._tokens.release()


def _serve_feed(
    web: LoopbackServer, count: int, held: Held | None = None, feed: str = "feed"
) -> None:
    items = "".join(
        f"<item><title>Article {n}</title><link>{web.url(f'/{feed}/{n}')}</link>"
        f"<pubDate>Fri, 28 Aug 2026 15:{n:02d}:00 GMT</pubDate></item>"
        for n in range(count)
    )
    web.routes[f"/{feed}.xml"] = static(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Invented</title>'
        f"{items}</channel></rss>".encode(),
        RSS,
    )
    for n in range(count):
        # The real page, declaring its own address as canonical: six articles, not one.
        page = LSM_PAGE.replace(LSM_URL, web.url(f"/{feed}/{n}")).encode()
        web.routes[f"/{feed}/{n}"] = held.route(page) if held else static(page, HTML)


def _with(settings: Settings, **ingest: float) -> Settings:
    return replace(settings, ingest=settings.ingest.model_copy(update=ingest))


async def _let_go_one_by_one(held: Held, pages: int, at_once: int) -> None:
    """Each time `at_once` requests wait (fewer at the end), let one of them go."""
    for left in range(pages, 0, -1):
        expected = min(at_once, left)

        async def waiting(expected: int = expected) -> bool:
            return held.waiting == expected

        await until(waiting, f"{expected} page requests in flight")
        held.let_one_go()


async def test_a_feeds_items_are_read_at_once_up_to_the_articles_in_flight(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    held = Held()
    _serve_feed(web, 6, held, feed="a")
    settings = _with(web_settings, articles_in_flight=3, host_concurrency=16)

    task = asyncio.create_task(ingest_once(settings, web.url("/a.xml"), name="invented"))
    await _let_go_one_by_one(held, 6, 3)
    result = await task

    assert (result.published, result.failed) == (6, 0)
    assert held.most == 3  # three at once while requests piled up, never a fourth
    urls = sorted(event.url for event in await published_articles(redis, namespace))
    assert urls == sorted(web.url(f"/a/{n}") for n in range(6))


async def test_the_host_concurrency_holds_however_many_articles_are_in_flight(
    web: LoopbackServer, namespace: Namespace, web_settings: Settings
) -> None:
    held = Held()
    _serve_feed(web, 6, held, feed="a")
    settings = _with(web_settings, articles_in_flight=6, host_concurrency=2)

    task = asyncio.create_task(ingest_once(settings, web.url("/a.xml"), name="invented"))
    await _let_go_one_by_one(held, 6, 2)
    result = await task

    assert result.published == 6
    assert held.most == 2  # six readers, two requests to the host at a time


async def test_requests_for_items_in_flight_start_no_closer_than_the_crawl_delay(
    web: LoopbackServer, namespace: Namespace, web_settings: Settings
) -> None:
    web.routes["/robots.txt"] = static(b"User-agent: *\nCrawl-delay: 0.5\n", "text/plain")
    _serve_feed(web, 4, feed="a")
    settings = _with(web_settings, articles_in_flight=4, host_concurrency=4)

    result = await ingest_once(settings, web.url("/a.xml"), name="invented")

    assert result.published == 4
    arrivals = [hit.at for hit in web.hits if hit.path.startswith("/a/")]
    assert len(arrivals) == 4
    # Arrival times jitter by scheduling (by tens of ms on a loaded machine); the starts
    # are spaced by the delay.
    assert min(later - earlier for earlier, later in pairwise(arrivals)) >= 0.4


async def test_once_polls_its_configured_sources_at_once(
    web: LoopbackServer, tmp_path: Path, web_settings: Settings
) -> None:
    held = Held()
    for feed in ("a", "b", "c"):
        _serve_feed(web, 2, held, feed=feed)
    sources = tmp_path / "sources.toml"
    sources.write_text(
        "".join(
            f'[[sources]]\nname = "{feed}"\nurl = "{web.url(f"/{feed}.xml")}"\n\n'
            for feed in ("a", "b", "c")
        ),
        encoding="utf-8",
    )
    settings = _with(web_settings, articles_in_flight=1, host_concurrency=16)
    settings = replace(settings, ingest=settings.ingest.model_copy(update={"sources": sources}))

    task = asyncio.create_task(ingest_configured_once(settings))
    # One article at a time per source, three sources: three pages asked for at once.
    await _let_go_one_by_one(held, 6, 3)
    results = await task

    assert [(r.source, r.published) for r in results] == [("a", 2), ("b", 2), ("c", 2)]
    assert held.most == 3
