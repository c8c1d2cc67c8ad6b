"""Finding articles: document kinds, sitemaps, listing pages, feed polling hints, lag."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime

import pytest

from services.ingest.dates import parse_date
from services.ingest.feeds import requested_interval
from services.ingest.kinds import document_kind
from services.ingest.listing import (
    EXCERPT_CHARS,
    MAX_FEEDS,
    MAX_LINKS,
    is_article_page,
    is_listing,
    parse_html,
    parse_listing,
    read_listing,
)
from services.ingest.results import PollResult, first_of_each
from services.ingest.schedule import next_poll_in
from services.ingest.sitemap_walk import Selection, read_sitemap
from services.ingest.sitemaps import (
    MAX_CHILDREN,
    MAX_DATE_CHARS,
    ChildVisit,
    SitemapEntry,
    SitemapError,
    parse_sitemap,
    plan_children,
    read_visit,
)
from services.ingest.urls import canonicalize_url
from shared.events import LABELS
from shared.text import normalize_whitespace
from tests.conftest import REALDATA


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("feed-heise-developer.atom", "feed"),
        ("feed-uol-noticias.rss", "feed"),
        ("feed-nenoksa-turbo-malformed.xml", "feed"),
        ("sitemap-news-arnews.xml", "sitemap"),
        ("article-heraldsun.html", "html"),
        ("article-lsm-lv.html", "html"),
        ("cbr-xml-daily-2023-09-27.xml", "feed"),  # not a feed: the feed parser says so clearly
    ],
)
def test_document_kind_from_the_content(name: str, kind: str) -> None:
    assert document_kind((REALDATA / name).read_bytes()) == kind


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
@pytest.mark.parametrize(
    ("name", "kind"),
    [("sitemap-news-arnews.xml", "sitemap"), ("article-lsm-lv.html", "html")],
)
def test_a_utf16_or_32_document_is_told_apart_too(encoding: str, name: str, kind: str) -> None:
    # Its markers, read as bytes, have NULs between their letters: a UTF-16 sitemap or
    # page was taken for a feed, and its source never read.
    text = (REALDATA / name).read_text(encoding="utf-8")
    assert document_kind(text.encode(encoding)) == kind


def test_google_news_sitemap_entries() -> None:
    sitemap = parse_sitemap((REALDATA / "sitemap-news-arnews.xml").read_bytes())
    assert len(sitemap.entries) == 5
    assert sitemap.children == []
    first = sitemap.entries[0]
    assert first.news_title == (
        "Sofisma da soberania: como o medo de cooperar fortalece o crime organizado no Brasil"
    )
    assert (first.date, first.news_language) == ("2026-05-29", "pt")
    assert "crime organizado" in first.keywords
    # A dot inside the slug and a double hyphen survive.
    assert any("repressao.pcc" in e.url for e in sitemap.entries)
    assert any("figado--hepatite" in e.url for e in sitemap.entries)


def test_a_poll_reads_one_entry_per_article_recent_enough_newest_first_up_to_its_room() -> None:
    # Selected where the sitemap is parsed (the sandbox), so the service's own process
    # gets only what it reads.
    urls = [
        ("https://s.kz/a", "2026-11-03"),
        ("https://s.kz/a?utm_source=x", "2026-11-04"),  # the same article again
        ("https://s.kz/b", "2026-10-01"),  # before since
        ("https://s.kz/c", "2026-11-05"),
        ("https://s.kz/d", None),  # undated: kept, last
        ("https://s.kz/e", "2026-11-02"),
    ]
    content = b"<urlset>%s</urlset>" % b"".join(
        b"<url><loc>%s</loc>%s</url>"
        % (url.encode(), b"<lastmod>%s</lastmod>" % date.encode() if date else b"")
        for url, date in urls
    )
    since, now = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 6, tzinfo=UTC)

    everything = read_sitemap(content, Selection(since, now, UTC))
    assert [e.url[-1] for e in everything.sitemap.entries] == ["c", "a", "e", "d"]
    assert everything.left_out == {"duplicate": 1, "before since": 1}
    assert not everything.whole
    room_for_two = read_sitemap(content, Selection(None, now, UTC, limit=2))
    assert [e.url[-1] for e in room_for_two.sitemap.entries] == ["c", "a"]
    assert room_for_two.left_out == {"duplicate": 1, "limit": 3}
    assert read_sitemap(content, Selection(None, now, UTC, limit=5)).whole  # repeats aside
    index = b"<sitemapindex><sitemap><loc>https://s.kz/1.xml</loc></sitemap></sitemapindex>"
    assert [c.url for c in read_sitemap(index, Selection(since, now, UTC, 0)).sitemap.children] == [
        "https://s.kz/1.xml"
    ]


def test_sitemap_index_and_namespace_free_sitemaps() -> None:
    index = parse_sitemap(
        b"<sitemapindex><sitemap><loc> https://s.kz/a.xml </loc>"
        b"<lastmod>2025-01-02</lastmod></sitemap>"
        b"<sitemap><loc>ftp://s.kz/b.xml</loc></sitemap></sitemapindex>"
    )
    assert [(c.url, c.date) for c in index.children] == [("https://s.kz/a.xml", "2025-01-02")]


def test_a_date_too_long_to_be_one_is_no_date() -> None:
    # A 4 MB <lastmod> was kept with the child's visit in Redis for a month, each poll.
    long = b"2025-01-02 " + b"x" * MAX_DATE_CHARS
    index = parse_sitemap(
        b"<sitemapindex><sitemap><loc>https://s.kz/a.xml</loc><lastmod>%s</lastmod></sitemap>"
        b"<sitemap><loc>https://s.kz/b.xml</loc><lastmod>\n  2025-01-03\n</lastmod></sitemap>"
        b"</sitemapindex>" % long
    )
    assert [(c.url, c.lastmod) for c in index.children] == [
        ("https://s.kz/a.xml", None),
        ("https://s.kz/b.xml", "2025-01-03"),
    ]
    news = parse_sitemap(
        b"<urlset><url><loc>https://s.kz/1</loc><news:news><news:publication_date>%s"
        b"</news:publication_date></news:news><lastmod>%s</lastmod></url></urlset>" % (long, long)
    )
    assert [(e.news_date, e.lastmod) for e in news.entries] == [(None, None)]


NEWS = b'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_reference_to_a_surrogate_costs_the_entry_its_field_not_the_sitemap(
    encoding: str,
) -> None:
    # lxml keeps `&#xD800;` as bytes no decoder reads: reading the text raised out of
    # parse_sitemap, every entry was lost and, of an index's child, the index's poll.
    urlset = (
        f'<?xml version="1.0" encoding="{encoding}"?><urlset {NEWS.decode()}>'
        "<url><loc>https://s.kz/&#xD800;</loc></url>"
        "<url><loc>https://s.kz/1</loc><lastmod>&#xDFFF;</lastmod><news:news>"
        "<news:title>A &#xD83D;&#xDE00; title</news:title><news:keywords>&#55296;</news:keywords>"
        "<news:publication_date>2025-01-02</news:publication_date></news:news></url>"
        '<url xmlns="https://s.kz/&#xD800;"><loc>https://s.kz/2</loc></url>'
        "<url><loc>https://s.kz/3</loc></url></urlset>"
    )
    sitemap = parse_sitemap(urlset.encode(encoding))
    assert [(e.url, e.lastmod, e.news_title, e.keywords, e.date) for e in sitemap.entries] == [
        ("https://s.kz/1", None, None, [], "2025-01-02"),
        ("https://s.kz/3", None, None, [], None),
    ]
    index = parse_sitemap(
        b"<sitemapindex><sitemap><loc>https://s.kz/&#xD800;.xml</loc></sitemap>"
        b"<sitemap><loc>https://s.kz/a.xml</loc></sitemap></sitemapindex>"
    )
    assert [c.url for c in index.children] == ["https://s.kz/a.xml"]


def test_a_sitemap_whose_namespace_is_no_text_is_a_sitemap_error() -> None:
    with pytest.raises(SitemapError, match="its namespace is not text"):
        parse_sitemap(
            b'<urlset xmlns="https://s.kz/&#xD800;"><url><loc>https://s.kz/1</loc></url></urlset>'
        )


def test_a_news_sitemap_with_its_prefix_left_undeclared_is_read() -> None:
    sitemap = parse_sitemap(
        b"<urlset><url><loc>https://s.kz/1</loc><news:news>"
        b"<news:title>Title</news:title></news:news></url></urlset>"
    )
    assert [(e.url, e.news_title) for e in sitemap.entries] == [("https://s.kz/1", "Title")]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"<rss><channel/></rss>",
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><urlset><url><loc>&e;</loc></url>'
        b"</urlset>",
    ],
)
def test_what_is_not_a_usable_sitemap(content: bytes) -> None:
    try:
        sitemap = parse_sitemap(content)
    except SitemapError:
        return
    assert sitemap.entries == []  # the external entity was not read


LISTING = """<html><head><link rel="alternate" type="application/atom+xml" href="/atom">
<link rel="alternate" type="text/html" hreflang="ru" href="/ru/"></head><body>
<nav><a href="/">Home page of the publication</a><a href="/about">About the publication</a></nav>
<h2><a href="/news/1?utm_source=x">Kazakhstan as an Emerging Middle Power</a></h2>
<p>Earlier this year, the Paris-based Institut Montaigne ...</p>
<article><a class="teaser-title" href="https://www.site.kz/news/2">EU Sanctions Envoy’s Kazakh
Visit</a><p>On January 30, David O’Sullivan ...</p></article>
<h3><a href="https://elsewhere.example/story">A headline on another site entirely</a></h3>
<h3><a href="/news/1">Kazakhstan as an Emerging Middle Power</a></h3>
<h3><a href="/news/3">Short</a></h3>
<li><h4><a href="/news/4">Turkey’s Turkic Gambit: Balancing Influence</a></h4> Despite its
superpower ambitions ...</li>
<a rel="next" href="?page=2">2</a>
</body></html>"""


def test_listing_finds_headline_links_excerpts_next_page_and_feeds() -> None:
    root = parse_html(LISTING)
    listing = parse_listing(root, "https://site.kz/section/")
    assert [link.url for link in listing.links] == [
        "https://site.kz/news/1?utm_source=x",
        "https://www.site.kz/news/2",
        "https://site.kz/news/4",
    ]
    assert listing.links[1].title == "EU Sanctions Envoy’s Kazakh Visit"
    assert listing.links[1].excerpt == "On January 30, David O’Sullivan ..."
    assert listing.links[2].excerpt == "Despite its superpower ambitions ..."
    assert listing.next_page == "https://site.kz/section/?page=2"
    assert listing.feeds == ["https://site.kz/atom"]
    assert is_listing(listing)
    assert not is_article_page(root)


def test_an_excerpt_reads_a_minified_block_as_a_browser_shows_it() -> None:
    # Its pieces were joined as they came: "close.</p><span>12 May" read "close.12 May".
    root = parse_html(
        '<html><body><article><a class="teaser-title" href="/news/1">Parliament votes on the'
        " budget of the republic</a><p>The vote was close.</p><time>12 May</time>"
        "<p>Tash<b>kent</b> wins.</p></article></body></html>"
    )
    [link] = parse_listing(root, "https://site.kz/").links
    assert link.excerpt == "The vote was close. 12 May Tashkent wins."


def test_next_page_by_its_label_and_article_pages_by_their_metadata() -> None:
    root = parse_html('<html><body><a href="/p/3">Next</a></body></html>')
    assert parse_listing(root, "https://s.kz/p/2").next_page == "https://s.kz/p/3"
    assert is_article_page(parse_html((REALDATA / "article-lsm-lv.html").read_text("utf-8")))
    assert is_article_page(
        parse_html(
            '<html><head><script type="application/ld+json">{"@type": "NewsArticle"}</script>'
            "</head></html>"
        )
    )


def _headlines(count: int) -> str:
    return "".join(
        f"<h2><a href='/p/{i}'>A headline long enough {i}</a></h2>" for i in range(count)
    )


def _characters_cleaned(html: str) -> int:
    """How much text reading the listing of `html` passed through the text cleaning."""
    cleaned = 0

    def counting(text: str) -> str:
        nonlocal cleaned
        cleaned += len(text)
        return normalize_whitespace(text)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("services.ingest.listing.normalize_whitespace", counting)
        read_listing(html, "https://s.example/")
    return cleaned


def test_headlines_sharing_one_block_read_it_once_and_excerpt_a_bounded_part() -> None:
    # Each of these headlines' excerpts was the whole <div>'s text: 11 s and 26 MB for 1,000.
    page = f"<html><body><div>{_headlines(500)}</div></body></html>"
    listing = read_listing(page, "https://s.example/")
    assert listing is not None
    assert len(listing.links) == 500
    assert all(0 < len(link.excerpt) <= EXCERPT_CHARS + 1 for link in listing.links)
    assert all(link.excerpt.endswith("…") for link in listing.links)  # cut, not whole
    # Each anchor's text for its title and its label, and the block once.
    assert _characters_cleaned(page) < 2 * len(page)


def test_nested_blocks_are_each_read_only_as_far_as_an_excerpt_goes() -> None:
    nested = "".join(
        f"<div><h2><a href='/p/{i}'>A headline long enough</a></h2>" for i in range(50)
    )
    page = f"<html><body>{nested}{'word ' * 100_000}</body></html>"
    assert _characters_cleaned(page) < len(page)


def test_a_listing_gives_its_first_links_up_to_the_bound_in_page_order() -> None:
    page = f"<html><body>{_headlines(MAX_LINKS + 10)}</body></html>"
    listing = read_listing(page, "https://s.example/")
    assert listing is not None
    assert [link.url for link in listing.links] == [
        f"https://s.example/p/{i}" for i in range(MAX_LINKS)
    ]


def test_a_listing_link_carries_the_key_the_poll_dedupes_by() -> None:
    # Made in the sandbox: 5,000 of them made on the event loop held it 16 s.
    page = (
        "<html><body><h2><a href='/p/1?utm_source=x'>A headline long enough</a></h2>"
        "<h2><a href='/p/1'>A headline long enough</a></h2></body></html>"
    )
    listing = read_listing(page, "https://s.example/")
    assert listing is not None
    assert [(link.url, link.key) for link in listing.links] == [
        ("https://s.example/p/1?utm_source=x", canonicalize_url("https://s.example/p/1"))
    ]


def test_a_page_advertises_its_first_distinct_feeds_up_to_the_bound() -> None:
    tags = "".join(
        f'<link rel="alternate" type="application/rss+xml" href="/feed/{i}">' * 2
        for i in range(5 * MAX_FEEDS)
    )
    listing = read_listing(f"<html><head>{tags}</head><body></body></html>", "https://s.example/")
    assert listing is not None
    assert listing.feeds == [f"https://s.example/feed/{i}" for i in range(MAX_FEEDS)]


def test_feeds_asking_for_slower_polling() -> None:
    assert requested_interval({"ttl": "90"}) == 5400.0
    assert requested_interval({"sy_updateperiod": "daily", "sy_updatefrequency": "4"}) == 21600.0
    assert requested_interval({"ttl": "60", "sy_updateperiod": "hourly"}) == 3600.0
    assert requested_interval({"ttl": "soon"}) is None
    assert requested_interval({"ttl": "²"}) is None  # a digit to str.isdigit(), not to int()
    assert requested_interval({"ttl": "9" * 5000}) is None
    assert next_poll_in(300.0, None) == 300.0
    assert next_poll_in(300.0, 60.0) == 300.0  # never faster than configured
    assert next_poll_in(300.0, 5400.0) == 5400.0
    assert next_poll_in(300.0, 30 * 86400.0) == 86400.0


def test_a_poll_summary_says_what_was_left_out_and_why() -> None:
    result = PollResult("site", kind="feed", failed=1)
    items, repeats = first_of_each(["a", "b", "A", "c", "d", "e"], str.lower)
    result.leave_out("duplicate", repeats)
    assert result.within_limit(items, 4) == ["a", "b", "c"]  # one failed already looked at
    result.count("new")
    result.count("new")
    assert result.summary() == (
        "site (feed): 2 articles published (2 new, 0 updated), "
        "0 unchanged, 4 items left out "
        "(duplicate: 1, failed: 1, limit: 2)"
    )
    assert result.within_limit(items, None) == items
    assert PollResult("s", error="FetchError: x").summary() == "s: failed: FetchError: x"


def _child(name: str, lastmod: str | None = None) -> SitemapEntry:
    """A child of an index, its moment as read_sitemap reads it."""
    moment = parse_date(lastmod, UTC, datetime(2026, 12, 6, 12, tzinfo=UTC))
    return SitemapEntry(
        f"https://s.kz/{name}.xml",
        lastmod=lastmod,
        moment=-math.inf if moment is None else moment.timestamp(),
    )


def test_children_of_a_sitemap_index_newest_lastmod_then_least_recently_visited_first() -> None:
    children = [
        _child("old", "2024-01-01"),
        _child("new", "2026-05-01"),
        _child("a"),
        _child("b"),
        _child("mid", "2025-01-01"),
    ]
    visits = {
        _child("a").url: ChildVisit(visited=200.0),
        _child("b").url: ChildVisit(100.0),
        _child("mid").url: ChildVisit(300.0, lastmod="2024-12-01"),
    }  # changed since

    now = datetime(2026, 12, 6, tzinfo=UTC).timestamp()
    plan = plan_children(children, visits, budget=4, now=now, interval=900.0)

    assert [c.url.split("/")[-1] for c in plan.fetch] == ["new.xml", "mid.xml", "old.xml", "b.xml"]
    assert (plan.unchanged, plan.resting, plan.deferred) == (0, 0, 1)


def test_children_go_newest_first_by_their_moment_whatever_the_dates_spelling() -> None:
    # As text, "Thu, …" sorted after every ISO date, and "+05:00" by its figures.
    lastmods = {
        "rfc822": "Sun, 06 Dec 2026 10:00:00 GMT",
        "iso": "2026-12-05",
        "tashkent": "2026-12-06T12:00:00+05:00",  # 07:00 UTC
        "future": "9999-12-31",  # absurd: no date
        "none": "",
    }
    index = b"<sitemapindex>%s</sitemapindex>" % b"".join(
        b"<sitemap><loc>https://s.kz/%s.xml</loc><lastmod>%s</lastmod></sitemap>"
        % (name.encode(), lastmod.encode())
        for name, lastmod in lastmods.items()
    )
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    children = read_sitemap(index, Selection(None, now, UTC)).sitemap.children
    expected = ["rfc822", "tashkent", "iso", "future", "none"]
    assert [c.url.split("/")[-1][:-4] for c in children] == expected
    # Given in any order, the plan goes by the moments (the undated as given).
    plan = plan_children(children[::-1], {}, budget=5, now=now.timestamp(), interval=900.0)
    assert [c.url.split("/")[-1][:-4] for c in plan.fetch] == [*expected[:3], "none", "future"]


def test_todays_entries_are_kept_whatever_the_older_ones_dates_spelling() -> None:
    # 120 entries of 2015 in RFC 822 and five of today in ISO 8601, with room for 100:
    # sorted as text, today's went last and were cut by the limit, on every poll.
    old = (
        b"<url><loc>https://s.kz/old-%d</loc><lastmod>Thu, 01 Jan 2015 00:00:00 GMT</lastmod></url>"
    )
    new = b"<url><loc>https://s.kz/new-%d</loc><lastmod>2026-12-06T08:00:00Z</lastmod></url>"
    content = b"<urlset>%s</urlset>" % b"".join(
        [old % n for n in range(120)] + [new % n for n in range(5)]
    )
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    kept = read_sitemap(content, Selection(None, now, UTC, limit=100)).sitemap.entries
    assert [e.url for e in kept[:5]] == [f"https://s.kz/new-{n}" for n in range(5)]


def test_what_a_sitemap_gives_back_is_bounded() -> None:
    # Parsed in the sandbox, but handed to the event loop: 1.45 million keywords of one
    # entry, or 173,668 children of an index, held it for most of a second.
    keywords = b",".join(b"k%d" % n for n in range(100_000))
    entry = parse_sitemap(
        b"<urlset><url><loc>https://s.kz/a</loc><news><keywords>%s</keywords></news></url>"
        b"</urlset>" % keywords
    ).entries[0]
    assert entry.keywords == [f"k{n}" for n in range(LABELS)]
    # The newest children of an index past the protocol's bound, listed last as sites
    # add them, are the ones kept; the cut is said.
    old = b"<sitemap><loc>https://s.kz/%d.xml</loc><lastmod>2020-01-01</lastmod></sitemap>"
    new = b"<sitemap><loc>https://s.kz/new-%d.xml</loc><lastmod>2026-12-06</lastmod></sitemap>"
    index = b"<sitemapindex>%s</sitemapindex>" % b"".join(
        [old % n for n in range(MAX_CHILDREN)] + [new % n for n in range(5)]
    )
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    reading = read_sitemap(index, Selection(None, now, UTC))
    assert len(reading.sitemap.children) == MAX_CHILDREN
    assert {c.url for c in reading.sitemap.children[:5]} == {
        f"https://s.kz/new-{n}.xml" for n in range(5)
    }
    assert reading.left_out == {"limit": 5}
    assert not reading.whole


def test_children_unchanged_by_lastmod_or_resting_after_304s_are_not_fetched() -> None:
    children = [_child("same", "2026-05-01"), _child("quiet"), _child("quieter")]
    visits = {
        _child("same").url: ChildVisit(0.0, lastmod="2026-05-01"),
        _child("quiet").url: ChildVisit(0.0, quiet=1),
        _child("quieter").url: ChildVisit(0.0, quiet=2),
    }

    def fetched(now: float) -> list[str]:
        plan = plan_children(children, visits, budget=50, now=now, interval=900.0)
        return [c.url.split("/")[-1] for c in plan.fetch]

    # One 304 rests two intervals, two in a row four: polls skipped, not the child forever.
    assert fetched(900.0 + 1) == []
    assert fetched(2 * 900.0 + 1) == ["quiet.xml"]
    assert fetched(4 * 900.0 + 1) == ["quiet.xml", "quieter.xml"]
    assert fetched(10**9) == ["quiet.xml", "quieter.xml"]  # never longer than a day


def test_a_visit_from_the_future_is_no_reason_to_rest() -> None:
    # Another replica's clock ahead, or a value nobody should have written (1e308).
    children = [_child("skewed"), _child("absurd")]
    visits = {
        _child("skewed").url: ChildVisit(1000.0 + 5, quiet=3),
        _child("absurd").url: ChildVisit(1e308, quiet=3),
    }
    plan = plan_children(children, visits, budget=50, now=1000.0, interval=900.0)
    assert sorted(c.url.split("/")[-1] for c in plan.fetch) == ["absurd.xml", "skewed.xml"]


def test_every_visit_caravan_stores_reads_back() -> None:
    # As IngestState writes it: JSON with non-ASCII escaped, six bytes a character.
    visit = ChildVisit(1.5, lastmod="понедельник, 4 мая 2026 " * 60, quiet=2)
    stored = json.dumps(dataclasses.asdict(visit)).encode()
    assert len(stored) > 4096
    assert read_visit(stored) == visit
