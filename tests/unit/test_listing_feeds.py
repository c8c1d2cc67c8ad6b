"""The feeds a poll of listing pages reports: bounded over all its pages, as on one."""

from __future__ import annotations

from typing import Any, cast

from services.ingest.listing import MAX_FEEDS
from services.ingest.results import PollResult
from services.ingest.sources import Source
from services.ingest.worker import Ingestor
from shared.fetcher import Fetched, PoliteFetcher
from shared.sandbox import Sandbox

SITE = "https://news.example/"


def _page(number: int) -> Fetched:
    """Page `number` of a listing that names MAX_FEEDS feeds of its own and a next page."""
    feeds = "".join(
        f'<link rel="alternate" type="application/rss+xml" href="/p{number}/feed{n}.xml">'
        for n in range(MAX_FEEDS)
    )
    body = f'<html><head>{feeds}</head><body><a rel="next" href="?page={number + 1}">Next</a>'
    return Fetched(f"{SITE}?page={number}", f"{body}</body></html>".encode(), "text/html")


class _Site:
    async def fetch(self, url: str) -> Fetched:
        return _page(int(url.rsplit("=", 1)[1]))


class _InProcess:
    async def run(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


async def test_the_feeds_of_every_page_are_as_many_as_one_page_may_name() -> None:
    ingestor = Ingestor(
        cast(Any, None), cast(PoliteFetcher, _Site()), cast(Any, None), cast(Sandbox, _InProcess())
    )
    result = PollResult("listing")
    source = Source(name="listing", url=f"{SITE}?page=1", kind="listing", max_pages=5)

    await ingestor._listing(source, _page(1), result)

    assert result.feeds == [f"{SITE}p1/feed{n}.xml" for n in range(MAX_FEEDS)]
