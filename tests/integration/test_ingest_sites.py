"""ingest of sitemaps and listing pages, over real HTTP on loopback.

The listing is the seed page of the project (samples/realdata/seed-page.txt,
scraped text) laid out as the HTML it came from: a currency ticker, "Viewing
results", headline links with excerpts, a "Next" link and an advertised feed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.ingest.app import ingest_configured_once, ingest_once
from services.ingest.sitemaps import ChildVisit
from services.ingest.state import IngestState, Record, _digest
from shared.fetcher import Validators
from shared.settings import Settings
from tests.conftest import REALDATA, Namespace
from tests.integration.conftest import published_articles
from tests.loopback import LoopbackServer, static

pytestmark = pytest.mark.integration

HTML = "text/html; charset=utf-8"
XML = "application/xml"
SEED = (REALDATA / "seed-page.txt").read_text(encoding="utf-8")
ARNEWS = (REALDATA / "sitemap-news-arnews.xml").read_text(encoding="utf-8")
PAGE_SIZE = 3


def _seed_articles() -> list[tuple[str, str]]:
    """(title, text) of the articles listed on the seed page."""
    listing = SEED.split("Viewing results 1 - 6 of 9", 1)[1]
    blocks = [b.strip() for b in listing.split("\n\n") if b.strip()]
    return list(zip(blocks[0::2], blocks[1::2], strict=True))


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _listing_page(number: int, articles: list[tuple[str, str]]) -> bytes:
    first = (number - 1) * PAGE_SIZE
    shown = articles[first : first + PAGE_SIZE]
    ticker = "".join(f"<li>{html.escape(line.strip(' •'))}</li>" for line in SEED.splitlines()[:5])
    items = "".join(
        f'<article class="teaser"><h2><a href="/kz/{_slug(t)}">{html.escape(t)}</a></h2>'
        f"<p>{html.escape(text[:280])}…</p></article>"
        for t, text in shown
    )
    more = first + PAGE_SIZE < len(articles)
    nav = f'<a href="/kz/?page={number + 1}">Next</a>' if more else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><title>Central Asia news</title>'
        '<link rel="alternate" type="application/rss+xml" href="/kz/feed.xml"></head><body>'
        f'<nav><a href="/">Home</a> <a href="/kz/about">About the publication</a></nav>'
        f'<ul class="ticker">{ticker}</ul><p>29 March 2025</p>'
        f"<p>Viewing results {first + 1} - {first + len(shown)} of {len(articles)}</p>"
        f"{items}<div class='pager'>{nav}</div></body></html>"
    ).encode()


def _article_page(title: str, text: str) -> bytes:
    paragraphs = "".join(f"<p>{html.escape(s)}.</p>" for s in text.split(". ") if s)
    return (
        f'<!DOCTYPE html><html lang="en"><head><title>{html.escape(title)}</title>'
        '<meta property="og:type" content="article"></head><body>'
        f'<nav><a href="/">Home</a></nav><article><h1>{html.escape(title)}</h1>{paragraphs}'
        "</article><footer>© the publication</footer></body></html>"
    ).encode()


def _serve_seed_site(web: LoopbackServer) -> list[tuple[str, str]]:
    articles = _seed_articles()
    web.routes["/kz/"] = static(_listing_page(1, articles), HTML)
    web.routes["/kz/?page=2"] = static(_listing_page(2, articles), HTML)
    for title, text in articles:
        web.routes[f"/kz/{_slug(title)}"] = static(_article_page(title, text), HTML)
    return articles


async def test_listing_pages_are_followed_and_each_article_read_from_its_page(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    articles = _serve_seed_site(web)
    assert len(articles) == 6

    result = await ingest_once(web_settings, web.url("/kz/"), name="seed")

    events = await published_articles(redis, namespace)
    assert (result.kind, result.published, result.failed) == ("listing", 6, 0)
    assert {e.title for e in events} == {title for title, _ in articles}
    assert all(e.extraction == "page" for e in events)
    by_title = {e.title: e for e in events}
    title, text = articles[1]
    assert "O’Sullivan" in by_title[title].body
    assert by_title[title].body.startswith(text.split(". ")[0])
    assert by_title[title].summary.startswith("On January 30, David O’Sullivan")
    assert result.feeds == [web.url("/kz/feed.xml")]
    assert "/kz/about" not in web.paths()  # navigation is not an article


async def test_configured_limits_bound_pages_items_and_sitemap_depth(
    web: LoopbackServer, redis: Redis, namespace: Namespace, tmp_path: Path, web_settings: Settings
) -> None:
    _serve_seed_site(web)
    _serve_arnews(web, {})
    config = tmp_path / "sources.toml"
    config.write_text(
        f"""
[[sources]]
name = "seed"
url = "{web.url("/kz/")}"
max_pages = 1
max_items = 2
timezone = "Asia/Almaty"

[[sources]]
name = "arnews"
url = "{web.url("/sitemap.xml")}"
sitemap_depth = 0
""",
        encoding="utf-8",
    )
    web_settings = replace(
        web_settings, ingest=web_settings.ingest.model_copy(update={"sources": config})
    )

    seed, arnews = await ingest_configured_once(web_settings)

    assert (seed.kind, seed.published, seed.left_out) == ("listing", 2, {"limit": 1})
    assert seed.summary().endswith("1 items left out (limit: 1)")
    assert "/kz/?page=2" not in web.paths()
    assert (arnews.kind, arnews.published, arnews.error) == ("sitemap", 0, None)
    assert "/sitemap-news.xml" not in web.paths()
    # The per-source status, as /metrics shows it.
    assert (
        REGISTRY.get_sample_value(
            "caravan_ingest_last_success_timestamp_seconds", {"source": "seed"}
        )
        or 0
    ) > 0
    assert (
        REGISTRY.get_sample_value(
            "caravan_ingest_items_total", {"source": "seed", "outcome": "new"}
        )
        or 0
    ) >= 2


def _serve_arnews(web: LoopbackServer, pages: dict[int, bytes]) -> list[str]:
    """The real news sitemap, its five URLs moved to `web`; `pages` maps index to HTML."""
    urls = re.findall(r"<loc>([^<]+)</loc>", ARNEWS)
    text = ARNEWS
    for position, url in enumerate(urls):
        path = f"/news/{position}.html"
        text = text.replace(url, web.url(path))
        if position in pages:
            web.routes[path] = static(pages[position], HTML)
    web.routes["/sitemap-news.xml"] = static(text.encode(), XML)
    web.routes["/sitemap-old.xml"] = static(
        b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        + f"<url><loc>{web.url('/old/1')}</loc><lastmod>2019-01-01</lastmod></url>".encode()
        + b"</urlset>",
        XML,
    )
    web.routes["/sitemap.xml"] = static(
        b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        + f"<sitemap><loc>{web.url('/sitemap-news.xml')}</loc>"
        f"<lastmod>2026-05-29T10:00:00+00:00</lastmod></sitemap>".encode()
        + f"<sitemap><loc>{web.url('/sitemap-old.xml')}</loc>"
        f"<lastmod>2019-01-02</lastmod></sitemap>".encode()
        + b"</sitemapindex>",
        XML,
    )
    return [re.sub(r"^https://[^/]+", "", u) for u in urls]


async def test_backfill_follows_the_sitemap_index_and_keeps_what_is_recent_enough(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    _serve_arnews(web, {0: (REALDATA / "article-lsm-lv.html").read_bytes()})

    result = await ingest_once(
        web_settings,
        web.url("/sitemap.xml"),
        name="arnews",
        kind="sitemap",
        since=datetime(2026, 5, 1, tzinfo=UTC),
    )

    events = {e.url: e for e in await published_articles(redis, namespace)}
    assert (result.kind, result.published) == ("sitemap", 5)
    assert "/sitemap-old.xml" not in web.paths()  # its lastmod is before --since
    from_page = events[web.url("/news/0.html")]
    assert from_page.extraction == "page"
    assert from_page.title == "Norvēģijā pēc zemes nogruvuma pieci bojāgājušie"
    # The other pages are missing (404): the news sitemap's own title and date stand in.
    fallback = events[web.url("/news/1.html")]
    assert fallback.extraction == "feed"
    assert fallback.title == (
        "Novo medicamento oferece 'cura funcional' para vírus hepático perigoso"
    )
    assert fallback.language == "pt"
    assert fallback.published_at is not None
    assert fallback.published_at.date().isoformat() == "2026-05-29"
    assert "hepatite B" in fallback.tags


async def test_sitemap_since_a_later_date_publishes_nothing(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    _serve_arnews(web, {})

    later = await ingest_once(
        web_settings,
        web.url("/sitemap.xml"),
        name="arnews",
        kind="sitemap",
        since=datetime(2026, 6, 1, tzinfo=UTC),
    )
    assert later.published == 0
    assert "/sitemap-news.xml" not in web.paths()

    direct = await ingest_once(web_settings, web.url("/sitemap-news.xml"), name="arnews")
    assert (direct.kind, direct.published) == ("sitemap", 5)


async def test_requests_to_one_host_start_no_closer_than_its_crawl_delay(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    web_settings = replace(
        web_settings, ingest=web_settings.ingest.model_copy(update={"host_delay": 0.1})
    )
    # robots.txt asks for more than the configured delay: it wins.
    web.routes["/robots.txt"] = static(b"User-agent: CaravanBot\nCrawl-delay: 0.3\n", "text/plain")
    _serve_seed_site(web)

    result = await ingest_once(web_settings, web.url("/kz/"), name="seed")

    assert result.published == 6
    arrivals = [hit.at for hit in web.hits if hit.path != "/robots.txt"]
    assert len(arrivals) == 8  # two listing pages, six articles
    # An arrival is when the server's thread got to the request: on a loaded machine one
    # comes late by a few hundred ms, lengthening the gap before it by what it takes from
    # the one after (0.495 s then 0.103 s, seen in CI). So the starts are judged as a
    # whole: spaced by the 0.3 s delay, one delay allowed for that lateness. At the
    # configured 0.1 s they would span about 0.7 s.
    assert arrivals[-1] - arrivals[0] >= 0.3 * (len(arrivals) - 2)


SITEMAP_NS = (
    'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
    'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
)


def _index(web: LoopbackServer, children: Sequence[tuple[str, str | None]]) -> bytes:
    """A sitemap index of (path on `web`, lastmod or None) children."""
    listed = "".join(
        f"<sitemap><loc>{web.url(path)}</loc>"
        + (f"<lastmod>{lastmod}</lastmod>" if lastmod else "")
        + "</sitemap>"
        for path, lastmod in children
    )
    return f'<?xml version="1.0"?><sitemapindex {SITEMAP_NS}>{listed}</sitemapindex>'.encode()


def _news_sitemap(web: LoopbackServer, path: str, title: str) -> bytes:
    return (
        f'<?xml version="1.0"?><urlset {SITEMAP_NS}><url><loc>{web.url(path)}</loc>'
        f"<news:news><news:title>{title}</news:title></news:news></url></urlset>"
    ).encode()


async def test_a_2000_child_index_costs_the_fetch_budget_per_poll_and_goes_on_where_it_stopped(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    web_settings = replace(
        web_settings,
        ingest=web_settings.ingest.model_copy(update={"sitemap_max_fetches_per_poll": 40}),
    )
    newest = datetime(2026, 5, 1, tzinfo=UTC)
    children = [
        (f"/sitemaps/{n}.xml", (newest - timedelta(days=n)).date().isoformat()) for n in range(2000)
    ]
    web.routes["/sitemap.xml"] = static(_index(web, children), XML, etag='"i1"')
    for path, _ in children:
        web.routes[path] = static(f"<urlset {SITEMAP_NS}></urlset>".encode(), XML)

    def fetched() -> list[str]:
        return [path for path in web.paths() if path.startswith("/sitemaps/")]

    first = await ingest_once(web_settings, web.url("/sitemap.xml"), name="big")
    assert fetched() == [path for path, _ in children[:40]]  # the newest first
    assert (first.sitemaps_read, first.sitemaps_deferred) == (40, 1960)

    second = await ingest_once(
        web_settings, web.url("/sitemap.xml"), name="big"
    )  # a restarted ingest
    assert fetched()[40:] == [path for path, _ in children[40:80]]  # where the first stopped
    assert second.summary().endswith(
        "child sitemaps: 40 read, 40 unchanged, 1920 left for a later poll"
    )
    # Read in full again, not answered 304: the first poll was partial.
    assert [h.headers.get("if-none-match") for h in web.hits if h.path == "/sitemap.xml"] == [
        None,
        None,
    ]


async def test_children_unchanged_by_lastmod_or_answering_304_are_not_fetched_every_poll(
    web: LoopbackServer, redis: Redis, namespace: Namespace, tmp_path: Path, web_settings: Settings
) -> None:
    web.routes["/a.xml"] = static(_news_sitemap(web, "/a/1", "Article A"), XML)
    web.routes["/b.xml"] = static(_news_sitemap(web, "/b/1", "Article B"), XML)
    web.routes["/c.xml"] = static(_news_sitemap(web, "/c/1", "Article C"), XML, etag='"c1"')
    children: list[tuple[str, str | None]] = [
        ("/a.xml", "2026-05-02"),
        ("/b.xml", "2026-05-01"),
        ("/c.xml", None),
    ]
    web.routes["/sitemap.xml"] = static(_index(web, children), XML)
    config = tmp_path / "sources.toml"
    config.write_text(
        f'[[sources]]\nname = "site"\nurl = "{web.url("/sitemap.xml")}"\ninterval = 3600\n',
        encoding="utf-8",
    )
    web_settings = replace(
        web_settings, ingest=web_settings.ingest.model_copy(update={"sources": config})
    )

    async def poll() -> list[str]:
        before = len(web.hits)
        (result,) = await ingest_configured_once(web_settings)
        assert result.error is None
        return [
            hit.path
            for hit in web.hits[before:]
            if hit.path.endswith(".xml") and hit.path != "/sitemap.xml"
        ]

    assert await poll() == ["/a.xml", "/b.xml", "/c.xml"]
    assert len(await published_articles(redis, namespace)) == 3
    # a and b: same lastmod as when read. c has none: asked again, conditionally.
    assert await poll() == ["/c.xml"]
    assert [h.headers.get("if-none-match") for h in web.hits if h.path == "/c.xml"] == [
        None,
        '"c1"',
    ]
    # c answered 304: it rests for the next poll (two intervals).
    assert await poll() == []
    children[1] = ("/b.xml", "2026-05-03")  # b changed
    web.routes["/sitemap.xml"] = static(_index(web, children), XML)
    assert await poll() == ["/b.xml"]
    assert len(await published_articles(redis, namespace)) == 3  # its article as it was


async def test_children_an_index_no_longer_lists_are_forgotten(
    redis: Redis, namespace: Namespace
) -> None:
    state = IngestState(redis, namespace.stream_prefix, ttl=60)
    index = "https://s.kz/sitemap.xml"
    for name in ("a", "b"):
        await state.remember_sitemap_child(
            index, f"https://s.kz/{name}.xml", ChildVisit(1.0, lastmod="2026-05-01", quiet=2)
        )

    visits = await state.recall_sitemap_children(index, {"https://s.kz/b.xml"})

    assert visits == {"https://s.kz/b.xml": ChildVisit(1.0, lastmod="2026-05-01", quiet=2)}
    assert await state.recall_sitemap_children(index, {"https://s.kz/a.xml"}) == {}


async def test_a_childs_visit_weighs_the_same_whatever_its_address(
    redis: Redis, namespace: Namespace
) -> None:
    # Fields were the children's addresses: a hostile index's children of 8 KB
    # addresses kept 400 KB a poll, each nested index's hash for 30 days.
    state = IngestState(redis, namespace.stream_prefix, ttl=60)
    index = "https://s.kz/sitemap.xml"
    long = "https://s.kz/" + "a" * 8000 + ".xml"
    await state.remember_sitemap_child(index, long, ChildVisit(1.0))
    assert [len(field) for field in await redis.hkeys(state._children_key(index))] == [32]
    assert await state.recall_sitemap_children(index, {long}) == {long: ChildVisit(1.0)}


async def test_visits_written_under_whole_addresses_are_kept_and_moved_under_digests(
    redis: Redis, namespace: Namespace
) -> None:
    # As a version before digests wrote them (and still does beside this one during a
    # rollout): the upgrade walked every sitemap index again from scratch.
    state = IngestState(redis, namespace.stream_prefix, ttl=60)
    index = "https://s.kz/sitemap.xml"
    key = state._children_key(index)
    await redis.hset(key, "https://s.kz/a.xml", b'{"visited": 1.0, "quiet": 2}')
    await state.remember_sitemap_child(index, "https://s.kz/b.xml", ChildVisit(3.0))
    await redis.hset(key, "https://s.kz/b.xml", b'{"visited": 2.0}')  # older than b's own

    listed = {"https://s.kz/a.xml", "https://s.kz/b.xml"}
    expected = {
        "https://s.kz/a.xml": ChildVisit(1.0, quiet=2),
        "https://s.kz/b.xml": ChildVisit(3.0),
    }
    assert await state.recall_sitemap_children(index, listed) == expected
    assert sorted(await redis.hkeys(key)) == sorted(_digest(url).encode() for url in listed)
    assert await state.recall_sitemap_children(index, listed) == expected


async def test_state_caravan_did_not_write_reads_as_none_and_fails_no_poll(
    redis: Redis, namespace: Namespace
) -> None:
    # Written by hand, cut, or by another version: before, each of these raised on every
    # poll of its source until the key expired (30 days).
    state = IngestState(redis, namespace.stream_prefix, ttl=60)
    index = "https://s.kz/sitemap.xml"
    listed = {f"https://s.kz/{n}.xml" for n in range(6)}
    values = [
        b"not json",
        b"[1]",
        b'{"visited": "yesterday"}',
        b'{"visited": 1e999}',
        b"[" * 3000 + b"]" * 3000,
        # A newer Caravan's visit, with a field this one does not know: still read.
        b'{"visited": 5.0, "lastmod": null, "quiet": 1, "etag": "x"}',
    ]
    await redis.hset(
        state._children_key(index),
        mapping={
            **{_digest(f"https://s.kz/{n}.xml"): value for n, value in enumerate(values)},
            # Not UTF-8, and a whole address as fields were before they were digests.
            b"https://s.kz/\xff.xml": b'{"visited": 1.0}',
            "https://s.kz/0.xml": b'{"visited": 1.0}',
        },
    )
    visits = await state.recall_sitemap_children(index, listed)
    assert visits == {"https://s.kz/5.xml": ChildVisit(5.0, None, 1)}
    # Neither is a listed child's: forgotten like any other.
    assert len(await redis.hkeys(state._children_key(index))) == len(values)

    await redis.hset(state._article_key("k"), mapping={"content": b"\xff", "lead": b"\xfe"})
    # Another content than any hash: the article is published again, its record rewritten.
    assert await state.record("k") == Record("\ufffd", "\ufffd")
    await redis.hset(state._document_key("https://s.kz/a", None), mapping={"etag": b"\xff"})
    assert (await state.validators("https://s.kz/a")).etag is None


async def test_state_of_another_type_is_forgotten_not_every_poll_failed(
    redis: Redis, namespace: Namespace
) -> None:
    # Set by hand where ingest keeps a hash: every read was refused (WRONGTYPE), and
    # the poll ended there, every article after it unpublished, until someone found it.
    state = IngestState(redis, namespace.stream_prefix, ttl=60)
    index = "https://s.kz/sitemap.xml"
    keys = [
        state._article_key("k"),
        state._document_key("https://s.kz/feed", "s"),
        state._children_key(index),
    ]
    for key in keys:
        await redis.set(key, "oops")

    assert await state.record("k") is None
    assert await state.validators("https://s.kz/feed", "s") == Validators()
    assert await state.recall_sitemap_children(index, {"https://s.kz/a.xml"}) == {}
    assert await redis.exists(*keys) == 0


async def test_an_index_that_drops_thousands_of_children_forgets_them_all(
    redis: Redis, namespace: Namespace
) -> None:
    # One HDEL of 9,000 children passed what a script can call with: refused on every
    # poll, the source failed until its state expired (30 days).
    state = IngestState(redis, namespace.stream_prefix, ttl=60)
    index = "https://s.kz/sitemap.xml"
    visit = b'{"visited": 1.0, "lastmod": null, "quiet": 0}'
    await redis.hset(
        state._children_key(index), mapping={f"http://s.kz/{n}.xml": visit for n in range(9000)}
    )
    assert await state.recall_sitemap_children(index, {"https://s.kz/0.xml"}) == {}
    assert await redis.hlen(state._children_key(index)) == 0
