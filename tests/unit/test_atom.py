"""Atom feeds as built from search hits: valid RFC 4287, escaped, stable ids."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from services.query.atom import (
    Feed,
    FeedEntry,
    FeedHit,
    atom_date,
    build_feed_search,
    feed_entry,
    feed_title,
    render,
    search_feed_id,
    search_page_path,
    shape_feed,
    xml_text,
)
from services.query.cursors import decode_cursor
from services.query.search import SearchRequest, build_search
from shared.searching import Criteria
from tests.atom import ATOM, atom_problems

EMPTY_AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
FETCHED = datetime(2026, 11, 29, 2, 37, 58, 404720, tzinfo=UTC)


def _entry(n: int, **changes: Any) -> FeedEntry:
    fields: dict[str, Any] = {
        "article_id": f"{n:032x}",
        "title": f"Article {n}",
        "link": f"https://news.example/{n}",
        "updated": FETCHED,
        "authors": ("news.example",),
    }
    return FeedEntry(**(fields | changes))


def _feed(*entries: FeedEntry, **changes: Any) -> Feed:
    fields: dict[str, Any] = {
        "id": "tag:caravan-news.github.io,2026:search?q=neft",
        "title": 'Caravan: "neft"',
        "self_url": "http://query/api/search.atom?q=neft",
        "updated_when_empty": EMPTY_AT,
        "entries": entries,
    }
    return Feed(**(fields | changes))


def _parse(document: bytes) -> etree._Element:
    return etree.fromstring(document)


def test_a_feed_and_its_entries_have_what_rfc_4287_requires() -> None:
    document = render(
        _feed(
            _entry(1, published=datetime(2026, 11, 28, 21, 0, tzinfo=UTC), summary="Oil"),
            _entry(2, authors=("Aziz Karimov", "Dana Nur"), language="uz-Latn"),
            alternate_url="http://query/?q=neft&sort=newest",
            next_url="http://query/api/search.atom?q=neft&cursor=abc",
        )
    )
    assert document.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert atom_problems(document) == []

    feed = _parse(document)
    assert feed.findtext(f"{ATOM}id") == "tag:caravan-news.github.io,2026:search?q=neft"
    assert feed.findtext(f"{ATOM}updated") == "2026-11-29T02:37:58Z"
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links == {
        "self": "http://query/api/search.atom?q=neft",
        "alternate": "http://query/?q=neft&sort=newest",
        "next": "http://query/api/search.atom?q=neft&cursor=abc",
    }
    first, second = feed.findall(f"{ATOM}entry")
    assert first.findtext(f"{ATOM}id") == f"tag:caravan-news.github.io,2026:articles/{1:032x}"
    assert first.findtext(f"{ATOM}published") == "2026-11-28T21:00:00Z"
    assert first.findtext(f"{ATOM}summary") == "Oil"
    assert first.find(f"{ATOM}link").get("href") == "https://news.example/1"  # type: ignore[union-attr]
    assert [a.findtext(f"{ATOM}name") for a in second.findall(f"{ATOM}author")] == [
        "Aziz Karimov",
        "Dana Nur",
    ]
    assert second.get("{http://www.w3.org/XML/1998/namespace}lang") == "uz-Latn"
    assert second.find(f"{ATOM}published") is None
    assert second.find(f"{ATOM}summary") is None


def test_an_empty_feed_is_valid_and_dated_as_told() -> None:
    document = render(_feed())
    assert atom_problems(document) == []
    assert _parse(document).findtext(f"{ATOM}updated") == "2026-11-30T08:00:00Z"


def test_untrusted_text_is_escaped_and_what_xml_cannot_carry_is_dropped() -> None:
    nasty = 'A <b>bold</b> & "quoted" \x00\x08\x1b\ud800\ufffe title]]> <!-- -->'
    document = render(
        _feed(
            _entry(1, title=nasty, summary=nasty, authors=(nasty,)),
            self_url='http://query/api/search.atom?q="><script>',
            title=nasty,
        )
    )
    assert atom_problems(document) == []
    feed = _parse(document)
    clean = 'A <b>bold</b> & "quoted"  title]]> <!-- -->'
    assert feed.findtext(f"{ATOM}title") == clean
    entry = feed.find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}title") == clean
    assert entry.findtext(f"{ATOM}summary") == clean
    assert feed.find(f"{ATOM}link").get("href") == 'http://query/api/search.atom?q="><script>'  # type: ignore[union-attr]
    assert b"<b>" not in document
    assert b"<script>" not in document


@given(st.text(max_size=200))
def test_any_text_makes_a_well_formed_valid_feed(text: str) -> None:
    document = render(_feed(_entry(1, title=text or "t", summary=text, authors=(text or "a",))))
    assert atom_problems(document) == []
    entry = _parse(document).find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}summary", default="") == xml_text(text)


def test_the_same_search_is_the_same_feed_whatever_the_order_of_its_filters() -> None:
    one = Criteria(q=" neft ", sources=("b.uz", "a.uz"), date_from=date(2026, 1, 1))
    other = Criteria(q="neft", sources=("a.uz", "b.uz", "a.uz"), date_from=date(2026, 1, 1))
    assert search_feed_id(one) == search_feed_id(other)
    assert search_feed_id(one) == (
        "tag:caravan-news.github.io,2026:search?q=neft&source=a.uz&source=b.uz&date_from=2026-01-01"
    )
    assert search_feed_id(Criteria(q="neft")) != search_feed_id(Criteria(q="gaz"))
    assert search_page_path(one) == (
        "/?q=neft&source=a.uz&source=b.uz&date_from=2026-01-01&sort=newest"
    )
    assert feed_title(one) == 'Caravan: "neft", source: a.uz, source: b.uz, date_from: 2026-01-01'
    assert feed_title(one, "  Oil news ") == "Caravan: Oil news"
    assert feed_title(Criteria()) == "Caravan: newest articles"


def test_the_feed_runs_the_search_newest_first_without_facets_or_near_spellings() -> None:
    request = SearchRequest(q="neft", sources=("kun.uz",), sort="relevance", size=20)
    body = build_feed_search(request, 10_000)
    plain = build_search(SearchRequest(q="neft", sources=("kun.uz",), sort="newest", size=20))
    assert body["query"] == plain["query"]
    assert body["sort"] == plain["sort"]
    assert "aggs" not in body
    assert "suggest" not in body
    assert body["_source"]["includes"][:2] == ["title", "url"]
    assert body["highlight"]["fields"]["body"]["no_match_size"] == 300


def _hit(n: int, **source: Any) -> FeedHit:
    fields: dict[str, Any] = {
        "title": f"Article {n}",
        "url": f"https://news.example/{n}",
        "source": "news.example",
        "fetched_at": "2026-11-29T02:37:58.404720Z",
    }
    hit = {"_id": f"{n:032x}", "_source": fields | source, "sort": [-n, n, f"u{n}"]}
    return cast(FeedHit, hit)


def test_entries_fall_back_to_the_body_and_the_source() -> None:
    hit = _hit(1, authors=[" "], published_at=None)
    hit["highlight"] = {"body": ["The start of the body,   as   indexed."]}
    entry = feed_entry(hit)
    assert entry.link == "https://news.example/1"
    assert entry.authors == ("news.example",)
    assert entry.summary == "The start of the body, as indexed."
    assert entry.published is None
    assert entry.updated == datetime(2026, 11, 29, 2, 37, 58, 404720, tzinfo=UTC)

    long = feed_entry(_hit(2, summary="word " * 100, language="ru"))
    assert len(long.summary) <= 301
    assert long.summary.endswith("…")
    assert long.language == "ru"


@pytest.mark.parametrize(("hits", "more"), [(3, True), (2, False)])
def test_a_full_page_links_to_the_next(hits: int, more: bool) -> None:
    request = SearchRequest(q="neft", size=3, sort="newest")
    answer = {"hits": {"hits": [_hit(n) for n in range(hits)]}}
    page = shape_feed(answer, request)
    assert [e.article_id for e in page.entries] == [f"{n:032x}" for n in range(hits)]
    assert (page.next_cursor is not None) is more
    if page.next_cursor:
        cursor = decode_cursor(page.next_cursor)
        assert cursor.offset == 3
        assert cursor.sort == "newest"
    assert shape_feed({"hits": {}}, request).entries == []
    assert shape_feed({}, request).entries == []


def test_the_checker_sees_what_rfc_4287_forbids() -> None:
    broken = b"""<?xml version='1.0' encoding='utf-8'?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="markdown">t</title><title>u</title>
  <updated>2026-11-30 08:00:00</updated>
  <link rel="alternate" type="text/html" href="/a"/><link type="text/html" href="/b"/>
  <entry><id>not-an-iri</id><title>e</title><updated>2026-11-30T08:00:00Z</updated></entry>
</feed>"""
    assert atom_problems(broken) == [
        "feed: 0 atom:id, needs exactly one",
        "feed: 2 atom:title, needs exactly one",
        "feed atom:title: type 'markdown' is not text, html or xhtml",
        "feed atom:updated: '2026-11-30 08:00:00' is not an RFC 3339 date-time",
        "feed: two alternate links of the same type and hreflang",
        "entry 0: atom:id 'not-an-iri' is not an absolute IRI",
        "entry 0: no atom:content and no alternate link",
        "entry 0: no author, and the feed has none",
    ]
    assert atom_problems(b"<rss/>") == ["the root is 'rss', not atom:feed"]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "ftp://news.example/1"])
def test_an_entry_whose_url_is_no_http_url_is_left_out(url: str) -> None:
    # Indexed before the event contract refused other schemes: its article page is a
    # 404 as well, so the entry has no link to give.
    request = SearchRequest(q="neft", size=3, sort="newest")
    answer = {"hits": {"hits": [_hit(1), _hit(2, url=url), _hit(3)]}}
    page = shape_feed(answer, request)
    assert [e.link for e in page.entries] == ["https://news.example/1", "https://news.example/3"]
    [reason] = page.left_out
    assert reason.startswith(f"'{2:032x}': ValidationError:")
    assert page.next_cursor is not None  # the page was full: the left-out hit counts


@pytest.mark.parametrize("stored", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_an_entry_dated_past_utcs_range_is_left_out_and_the_feed_still_renders(
    stored: str,
) -> None:
    # Elasticsearch keeps such a date (another writer's); in UTC it is no datetime.
    request = SearchRequest(q="neft", size=3, sort="newest")
    answer = {"hits": {"hits": [_hit(1), _hit(2, published_at=stored), _hit(3, fetched_at=stored)]}}
    page = shape_feed(answer, request)
    assert [e.article_id for e in page.entries] == [f"{1:032x}"]
    assert [reason[:34] for reason in page.left_out] == [f"'{n:032x}'" for n in (2, 3)]
    assert atom_problems(render(_feed(*page.entries))) == []


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (datetime(850, 6, 1, tzinfo=UTC), "0850-06-01T00:00:00Z"),
        (datetime(1, 1, 1, 5, tzinfo=timezone(timedelta(hours=5))), "0001-01-01T00:00:00Z"),
        (FETCHED, "2026-11-29T02:37:58Z"),
        (
            datetime(2026, 11, 29, 7, 37, 58, tzinfo=timezone(timedelta(hours=5))),
            "2026-11-29T02:37:58Z",
        ),
    ],
)
def test_dates_are_rfc_3339_in_utc_with_a_four_digit_year(moment: datetime, written: str) -> None:
    assert atom_date(moment) == written
