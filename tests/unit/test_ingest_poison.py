"""One poisoned document costs itself, never its feed or its sitemap index.

A title of 100,000 combining marks took NFC seconds (insertion sort of the run), ran
its document's parse past the sandbox's limit and lost every other item of the feed;
in a sitemap index, the child's ParseFailed ended the whole poll, every poll.
Fakes stand in for the web and for Redis; the parsers are the real ones.
"""

from __future__ import annotations

from typing import Any

from services.ingest.sources import Source
from services.ingest.worker import ArticleStream, Ingestor
from shared.fetch import FetchError
from shared.fetcher import Fetched, Validators
from shared.sandbox import ParseFailed
from shared.text import MOST_MARKS_IN_A_ROW, normalize_whitespace

NEWS = (
    'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
    'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
)
MARKS = "\u0301" * 50_000 + "\u0316" * 50_000


def test_a_run_of_marks_is_cut_to_the_stream_safe_length_and_real_text_is_kept() -> None:
    assert normalize_whitespace("x" + MARKS) == "x" + "\u0301" * MOST_MARKS_IN_A_ROW
    assert normalize_whitespace("Cafe\u0301 a\u0323\u0307") == "Café \u1ea1\u0307"
    thirty = "a" + "\u0308" * MOST_MARKS_IN_A_ROW
    assert normalize_whitespace(thirty) == "\u00e4" + "\u0308" * (MOST_MARKS_IN_A_ROW - 1)


def _urlset(entries: list[tuple[str, str]]) -> bytes:
    urls = "".join(
        f"<url><loc>{u}</loc><news:news><news:title>{t}</news:title></news:news></url>"
        for u, t in entries
    )
    return f"<urlset {NEWS}>{urls}</urlset>".encode()


DOCUMENTS = {
    "http://site.test/index.xml": (
        f"<sitemapindex {NEWS}>"
        "<sitemap><loc>http://site.test/new.xml</loc><lastmod>2025-06-02</lastmod></sitemap>"
        "<sitemap><loc>http://site.test/old.xml</loc><lastmod>2025-06-01</lastmod></sitemap>"
        "</sitemapindex>"
    ).encode(),
    "http://site.test/new.xml": _urlset([("http://site.test/a1", "Good one")]),
    "http://site.test/old.xml": _urlset(
        [(f"http://site.test/b{i}", f"Story {i}") for i in range(3)]
    ),
}


class Web:
    async def fetch(self, url: str, validators: Validators | None = None) -> Fetched:
        if url in DOCUMENTS:
            return Fetched(url, DOCUMENTS[url], "application/xml")
        raise FetchError(f"{url}: no page here")


class Memory:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.children: dict[str, Any] = {}

    def under(self, _: Any) -> Memory:
        return self

    async def validators(self, *_: Any) -> Validators:
        return Validators()

    async def remember_validators(self, *_: Any) -> None:
        return None

    async def recall_sitemap_children(self, _: str, listed: Any) -> dict[str, Any]:
        return {u: v for u, v in self.children.items() if u in listed}

    async def remember_sitemap_child(self, _: str, child: str, visit: Any) -> None:
        self.children[child] = visit

    async def record(self, _: str) -> None:
        return None

    async def touch(self, _: str) -> None:
        return None

    async def remember(self, *_: Any, **__: Any) -> None:
        return None

    async def publish(self, _: Any, key: str, *__: Any, **___: Any) -> None:
        self.published.append(key)


class Sandbox:
    """Runs parsers in the process; the newest child's parse runs out of time."""

    async def run(self, fn: Any, *args: Any) -> Any:
        if args and args[0] == DOCUMENTS["http://site.test/new.xml"]:
            raise ParseFailed("not parsed within 20s (worker stopped)")
        return fn(*args)


async def test_a_child_past_the_parse_limit_costs_that_child_not_the_index() -> None:
    state = Memory()
    ingestor = Ingestor(ArticleStream("caravan:articles"), Web(), state, Sandbox())  # type: ignore[arg-type]
    source = Source(name="site", url="http://site.test/index.xml")
    first = await ingestor.poll(source)
    assert first.sitemaps_read == 1  # the older child, read although the newer failed
    assert len(state.published) == 3
    assert "http://site.test/new.xml" in state.children  # remembered: not first for ever
    second = await ingestor.poll(source)  # the failing child again: still not the poll's end
    assert second.sitemaps_unchanged == 1


def test_validators_kept_before_they_were_checked_are_not_sent_back() -> None:
    # Stored in Redis by an earlier version: sending them failed the request, every poll.
    assert Validators('"p\xff"', "Dim, 06 d\xe9c 2026").headers() == {}
    assert Validators('"' + "v" * 300 + '"', None).headers() == {}
    assert Validators('"v1"', "Sun, 06 Dec 2026 10:00:00 GMT").headers() == {
        "If-None-Match": '"v1"',
        "If-Modified-Since": "Sun, 06 Dec 2026 10:00:00 GMT",
    }
