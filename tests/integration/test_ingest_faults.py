"""ingest under the faults sources bring: hostile dates, a poll that crashes, a page
that crashes the extractor. One source's trouble stays with that source.

Real Redis, real HTTP on loopback; the poll loop's sleep is replaced by one that
records what it was asked to wait, so no test waits on the clock.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.ingest import schedule
from services.ingest.app import connected_ingestor, ingest_configured_once
from services.ingest.extract import Extracted, extract_article
from services.ingest.feeds import FeedParse, parse_feed
from services.ingest.sources import Source
from shared.settings import Settings
from shared.tasks import cancel_until_done
from tests.conftest import Namespace
from tests.integration.conftest import published_articles
from tests.loopback import LoopbackServer, static

# Production faults of a source's data: part of `make test-faults` as well.
pytestmark = [pytest.mark.integration, pytest.mark.faults]

RSS = "application/rss+xml"
XML = "application/xml"
HTML = "text/html; charset=utf-8"


def _feed(web: LoopbackServer, *items: tuple[str, str, str]) -> bytes:
    """An RSS feed of (title, path on `web`, pubDate) items."""
    body = "".join(
        f"<item><title>{title}</title><link>{web.url(path)}</link><pubDate>{date}</pubDate></item>"
        for title, path, date in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Invented</title>'
        f"{body}</channel></rss>"
    ).encode()


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_year_1_dates_in_a_feed_and_a_sitemap_index_fail_no_poll(
    web: LoopbackServer, redis: Redis, namespace: Namespace, tmp_path: Path, web_settings: Settings
) -> None:
    # The dates of the issue: year 1 in a UTC+5 source, written with and without the offset.
    web.routes["/feed.xml"] = static(
        _feed(
            web,
            ("Zero hour", "/a/1", "0001-01-01T00:00:00"),
            ("Zero hour east", "/a/2", "0001-01-01T00:00:00+05:00"),
        ),
        RSS,
    )
    web.routes["/sitemap.xml"] = static(
        f"<sitemapindex><sitemap><loc>{web.url('/sitemap-1.xml')}</loc>"
        "<lastmod>0001-01-01T00:00:00</lastmod></sitemap></sitemapindex>".encode(),
        XML,
    )
    web.routes["/sitemap-1.xml"] = static(
        f"<urlset><url><loc>{web.url('/a/3')}</loc><lastmod>0001-01-01T00:00:00+05:00</lastmod>"
        "<news:news><news:title>Zero hour, mapped</news:title></news:news></url>"
        "</urlset>".encode(),
        XML,
    )
    config = tmp_path / "sources.toml"
    config.write_text(
        "".join(
            f'[[sources]]\nname = "{name}"\nurl = "{web.url(path)}"\ntimezone = "Asia/Almaty"\n'
            for name, path in [("feed", "/feed.xml"), ("sitemap", "/sitemap.xml")]
        ),
        encoding="utf-8",
    )
    web_settings = replace(
        web_settings, ingest=web_settings.ingest.model_copy(update={"sources": config})
    )

    feed, sitemap = await ingest_configured_once(web_settings)

    assert (feed.error, feed.published, sitemap.error, sitemap.published) == (None, 2, None, 1)
    events = await published_articles(redis, namespace)
    assert sorted(e.title for e in events) == ["Zero hour", "Zero hour east", "Zero hour, mapped"]
    assert all(e.published_at is None for e in events)  # unknown, not an error


Sleep = Callable[[float], Awaitable[None]]


def crashing_parse_feed(
    content: bytes, source: Source, fetched_at: datetime, room: int | None
) -> FeedParse:
    if source.name == "bad":  # a bug some source's data brings out
        raise OverflowError("date value out of range")
    return parse_feed(content, source, fetched_at, room)


async def test_a_crashing_source_is_retried_with_backoff_while_the_others_keep_polling(
    web: LoopbackServer,
    redis: Redis,
    namespace: Namespace,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    web_settings: Settings,
) -> None:
    web.routes["/good.xml"] = static(_feed(web, ("Good news", "/a/good", "")), RSS, etag='"g"')
    web.routes["/bad.xml"] = static(_feed(web, ("Bad news", "/a/bad", "")), RSS)

    # Run in the parsing worker, which imports it from here by name.
    monkeypatch.setattr("services.ingest.worker.parse_feed", crashing_parse_feed)
    good = Source(name="good", url=web.url("/good.xml"), interval=600)
    bad = Source(name="bad", url=web.url("/bad.xml"), interval=600)
    waits: dict[str, list[float]] = {"good": [], "bad": []}
    polled_enough = asyncio.Event()

    def recorder(name: str) -> Sleep:
        async def sleep(seconds: float) -> None:
            waits[name].append(seconds)
            if all(len(asked) >= 3 for asked in waits.values()):
                polled_enough.set()
            if len(waits[name]) >= 3:
                await asyncio.Future()  # this source has polled enough: hold here

        return sleep

    errors_before = _sample("caravan_ingest_poll_errors_total", source="bad", error="OverflowError")
    async with connected_ingestor(web_settings) as ingestor:
        tasks = [
            asyncio.create_task(
                schedule.run_source_forever(
                    ingestor, source, sleep=recorder(source.name), rng=random.Random(1)
                )
            )
            for source in (good, bad)
        ]
        await asyncio.wait_for(polled_enough.wait(), timeout=60)
        assert not any(task.done() for task in tasks)  # neither loop died
        await cancel_until_done(tasks)

    assert waits["good"] == [600.0, 600.0, 600.0]
    # Retried sooner than the interval at first, then less and less soon.
    first, second, third = waits["bad"]
    assert 15 <= first <= 30
    assert 30 <= second <= 60
    assert 60 <= third <= 120
    assert (
        _sample("caravan_ingest_poll_errors_total", source="bad", error="OverflowError")
        == errors_before + 3
    )
    assert [e.title for e in await published_articles(redis, namespace)] == ["Good news"]
    crashes = [
        line for line in capsys.readouterr().out.splitlines() if "source poll crashed" in line
    ]
    assert len(crashes) == 3
    assert all("source=bad" in line for line in crashes)  # bound once, on every line


async def test_a_page_that_crashes_the_extractor_is_one_article_from_the_feed(
    web: LoopbackServer,
    redis: Redis,
    namespace: Namespace,
    monkeypatch: pytest.MonkeyPatch,
    web_settings: Settings,
) -> None:
    page = b"<html><body><article><h1>A title</h1><p>" + b"Text. " * 100 + b"</p></article>"
    web.routes["/feed.xml"] = static(
        _feed(web, ("Crasher", "/a/crash", ""), ("Fine", "/a/fine", "")), RSS
    )
    web.routes["/a/crash"] = static(page, HTML)
    web.routes["/a/fine"] = static(page, HTML)

    # Run in the parsing worker, which imports it from here by name.
    monkeypatch.setattr("services.ingest.worker.extract_article", crashing_extract)

    async with connected_ingestor(web_settings) as ingestor:
        result = await schedule.poll_safely(ingestor, Source(name="x", url=web.url("/feed.xml")))
        again = await schedule.poll_safely(ingestor, Source(name="x", url=web.url("/feed.xml")))

    assert (result.error, result.published) == (None, 2)
    events = {e.title: e for e in await published_articles(redis, namespace)}
    assert events["Crasher"].extraction == "feed"  # the feed item stood in
    assert events["A title"].extraction == "page"
    # Recorded, not fetched and crashed on again at every poll.
    assert (again.error, again.published) == (None, 0)
    assert web.paths().count("/a/crash") == 1


def crashing_extract(html: str, url: str) -> Extracted | None:
    if url.endswith("/a/crash"):
        raise RecursionError("maximum recursion depth exceeded")
    return extract_article(html, url)


async def test_an_item_too_large_for_any_reader_is_not_published_and_the_others_are(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    # 9 MB of quotes, each escaped in the event's JSON: 18 MB, past what the indexer
    # (and the contract) takes, where it was published, dead-lettered and never indexed.
    quotes = '"' * 9_000_000
    web.routes["/feed.xml"] = static(
        (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Invented</title>'
            f"<item><title>Quoted</title><link>{web.url('/a/gone')}</link>"
            f"<description>{quotes}</description></item>"
            f"<item><title>Fine</title><link>{web.url('/a/gone-too')}</link>"
            "<description>A short one.</description></item></channel></rss>"
        ).encode(),
        RSS,
    )
    async with connected_ingestor(web_settings) as ingestor:
        result = await schedule.poll_safely(ingestor, Source(name="x", url=web.url("/feed.xml")))

    assert (result.error, result.published, result.failed) == (None, 1, 1)
    [event] = await published_articles(redis, namespace)
    assert (event.title, event.extraction) == ("Fine", "feed")
