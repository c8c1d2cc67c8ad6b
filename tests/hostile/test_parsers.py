"""Every parser of untrusted bytes against input made to be expensive: its work grows
about linearly (the doubling check), and it answers with its own clear error or a
result, never anything else.

Each case is a shape that made a parser of this kind (ours or a library's) quadratic,
recursive or explosive somewhere; the ones found in Caravan itself are marked.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.indexer.decode import Invalid, decode_entry
from services.ingest.charset import decode, xml_as_utf8
from services.ingest.dates import parse_date
from services.ingest.extract import bounded_html, extract_article
from services.ingest.feeds import FeedError, parse_feed
from services.ingest.listing import page_kind, read_listing
from services.ingest.markup import page_with_few_attributes
from services.ingest.sitemaps import SitemapError, parse_sitemap
from services.ingest.sources import Source
from services.query.cursors import InvalidCursor, decode_cursor
from services.query.search import SearchRequest, build_search
from services.ratefeed.catalog import DOCUMENT_PARSERS, detect
from services.ratefeed.providers import RatesError
from shared.backoff import retry_after_seconds
from shared.consumer import Entry
from shared.index import IndexNames
from shared.language.analysis import fold_text, stem_text
from shared.searching import query_text
from shared.settings import CommonSettings
from shared.streams import DATA_FIELD, Streams
from tests.hostile.corpus import DEEP_NEST, NOW, ONE_LONG_WORD, article
from tests.hostile.scaling import MAX_DOUBLING_RATIO, doubling_ratio

SOURCE = Source(name="hostile", url="https://site.example/feed.xml")
STREAMS = Streams(CommonSettings(stream_prefix="t:"))
NAMES = IndexNames("t-")


def _article_entry(body: str) -> Entry:
    return Entry(STREAMS.articles, "1-0", {DATA_FIELD: article(body).model_dump_json().encode()})


def _decoded(entry: Entry) -> object:
    return decode_entry(entry, STREAMS, NAMES)


def _attributes(n: int) -> str:
    return "".join(f" a{k}=1" for k in range(n))


def _page_of_attributes(n: int) -> str:
    return f"<html><body><p{_attributes(n)}>An article's text</p></body></html>"


@dataclass(frozen=True)
class Case:
    name: str
    work: Callable[[Any], object]
    make: Callable[[int], Any]
    size: int


CASES = [
    # Caravan's own, before: an unclosed tag rescanned the rest of the page (43 s for 2,000).
    Case(
        "page over the cut, <script without >",
        bounded_html,
        lambda n: "<p>text</p>" * 300_000 + "<script " * n,
        1000,
    ),
    Case(
        "page over the cut, unclosed <script>",
        bounded_html,
        lambda n: "<script>" * n + "<p>x</p>" * 400_000,
        1000,
    ),
    Case(
        "page over the cut, <style> closed by </script>",
        bounded_html,
        lambda n: "<p>x</p>" * 400_000 + "<style>a</script>" * n,
        1000,
    ),
    Case(
        "listing of many links",
        lambda html: read_listing(html, "https://s.example/"),
        lambda n: "<html><body>" + "<h2><a href='/a/1'>Headline</a></h2>" * n,
        500,
    ),
    # Caravan's own, before: each headline re-read the whole block (11 s for 1,000).
    Case(
        "listing of many headlines in one block",
        lambda html: read_listing(html, "https://s.example/"),
        lambda n: (
            "<html><body><div>"
            + "".join(f"<h2><a href='/a/{i}'>A headline long enough {i}</a></h2>" for i in range(n))
        ),
        100,
    ),
    Case(
        "page nested deeply",
        lambda html: page_kind(html, "https://s.example/"),
        lambda n: "<div>" * n + "text" + "</div>" * n,
        500,
    ),
    # libxml2's HTML parser checks each attribute against those before it, feedparser
    # looks each up among all: 19 s for 40,000 (the parse worker's timeout is 20 s).
    Case(
        "article page of a tag with many attributes",
        lambda html: extract_article(html, "https://s.example/a"),
        _page_of_attributes,
        # Below, the rest of an extraction hides the growth (3x from 10,000 to 20,000).
        10_000,
    ),
    Case(
        "listing of a tag with many attributes",
        lambda html: read_listing(html, "https://s.example/"),
        _page_of_attributes,
        1000,
    ),
    Case(
        "page kind of a tag with many attributes",
        lambda html: page_kind(html, "https://s.example/"),
        _page_of_attributes,
        1000,
    ),
    Case(
        "page kind of a tag with many attributes after an empty comment",
        lambda html: page_kind(html, "https://s.example/"),
        lambda n: "<!-->" + _page_of_attributes(n),
        1000,
    ),
    Case(
        "feed item of a tag with many attributes",
        lambda xml: parse_feed(xml, SOURCE, NOW),
        lambda n: (
            b"<rss><channel><title>t</title><item><title>t</title><link>https://s.example/a"
            b"</link><description><img" + _attributes(n).encode() + b"/></description></item>"
        ),
        1000,
    ),
    Case(
        "feed item of a tag with many attributes after a script in CDATA",
        lambda xml: parse_feed(xml, SOURCE, NOW),
        lambda n: (
            b"<rss><channel><title><![CDATA[<script>]]>t</title><item><title>t</title>"
            b"<link>https://s.example/a</link><p" + _attributes(n).encode() + b"/></item>"
        ),
        1000,
    ),
    # The cut itself: a regex that fails on a tag and retries inside it is quadratic.
    Case("tags inside a tag's attributes", page_with_few_attributes, lambda n: "<a " * n, 1000),
    Case(
        "feed of many items",
        lambda xml: parse_feed(xml, SOURCE, NOW),
        lambda n: (
            b"<rss><channel><title>t</title>"
            + b"<item><title>t</title><link>https://s.example/a</link></item>" * n
        ),
        100,
    ),
    Case(
        "feed of unclosed items",
        lambda xml: parse_feed(xml, SOURCE, NOW),
        lambda n: b"<rss><channel><title>t</title>" + b"<item><title>t" * n,
        100,
    ),
    Case(
        "sitemap of many urls",
        parse_sitemap,
        lambda n: b"<urlset>" + b"<url><loc>https://s.example/a</loc></url>" * n,
        500,
    ),
    # Caravan's own, before: the zone's pattern backtracked (0.6 s for 96,000 characters).
    Case(
        "date of many zones",
        lambda text: parse_date(text, UTC, NOW),
        lambda n: "+1:00(" * n,
        1000,
    ),
    Case("sitemap nested deeply", parse_sitemap, lambda n: b"<urlset>" + b"<url>" * n, 500),
    Case("bytes of no charset", decode, lambda n: bytes(range(128, 256)) * n, 100),
    Case(
        "xml declaration never closed",
        xml_as_utf8,
        lambda n: b"<?xml version='1.0' " + b"a" * n,
        10_000,
    ),
    Case("rates: JSON nested deeply", detect, lambda n: b"[" * n, 1000),
    Case(
        "rates: XML of many entries",
        detect,
        lambda n: (
            b"<ValCurs Date='01.01.2026'>" + b"<Valute><CharCode>KZT</CharCode>"
            b"<Nominal>1</Nominal><Value>1,0</Value></Valute>" * n
        ),
        100,
    ),
    # Caravan's own, before: the plain-number check tried every split of the digits
    # (34 s for a 47 KB value, each poll, the rate feed's loop held).
    Case(
        "rates: one number of many digits",
        detect,
        lambda n: (
            b"<ValCurs Date='01.01.2026'><Valute><CharCode>KZT</CharCode>"
            b"<Nominal>1</Nominal><Value>" + b"1" * n + b"_1</Value></Valute></ValCurs>"
        ),
        4000,
    ),
    # Caravan's own, before: folding lost one character per pass (24 s for 78 KiB).
    Case("article of one long word", _decoded, lambda n: _article_entry("k" * n + "h"), 10_000),
    Case("article of digraph runs", _decoded, lambda n: _article_entry("kh" * n), 10_000),
    Case("fold of a long Cyrillic word", fold_text, lambda n: "Ўзбекистон" * n, 1000),
    Case("stems of many words", stem_text, lambda n: "Ташкентдаги ярмаркалар " * n, 1000),
    Case(
        "event JSON nested deeply",
        _decoded,
        lambda n: Entry(STREAMS.articles, "1-0", {DATA_FIELD: b'{"title":' * n}),
        1000,
    ),
    Case(
        "search text with many ORs",
        lambda q: build_search(SearchRequest(q=q)),
        lambda n: "a OR " * n,
        100,
    ),
    Case("search text of quotes", query_text, lambda n: '"a OR b" ' * n, 1000),
    Case("cursor of nested JSON", decode_cursor, lambda n: "W" * (4 * n), 1000),
    Case(
        "Retry-After of many digits",
        lambda value: retry_after_seconds(value, NOW, cap=3600.0),
        lambda n: "9" * n,
        10_000,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_work_grows_about_linearly(case: Case) -> None:
    ratio = doubling_ratio(case.work, case.make, case.size)
    assert ratio < MAX_DOUBLING_RATIO, f"{case.name}: doubling the input took {ratio:.1f}×"


def test_a_deeply_nested_event_is_one_invalid_entry() -> None:
    result = decode_entry(Entry(STREAMS.articles, "1-0", {DATA_FIELD: DEEP_NEST}), STREAMS, NAMES)
    assert isinstance(result, Invalid)


def test_an_article_of_one_long_word_is_decoded() -> None:
    assert not isinstance(decode_entry(_article_entry(ONE_LONG_WORD), STREAMS, NAMES), Invalid)


@pytest.mark.parametrize("kind", sorted(DOCUMENT_PARSERS))
@settings(max_examples=40, deadline=None)
@given(document=st.binary(max_size=2000) | st.text(max_size=500).map(str.encode))
def test_rate_documents_are_parsed_or_refused_clearly(kind: str, document: bytes) -> None:
    with contextlib.suppress(RatesError):
        DOCUMENT_PARSERS[kind](document)


@settings(max_examples=60, deadline=None)
@given(document=st.binary(max_size=3000))
def test_feeds_and_sitemaps_are_parsed_or_refused_clearly(document: bytes) -> None:
    with contextlib.suppress(FeedError):
        parse_feed(document, SOURCE, NOW)
    with contextlib.suppress(SitemapError):
        parse_sitemap(document)


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=300))
def test_cursors_are_read_or_refused_clearly(text: str) -> None:
    with contextlib.suppress(InvalidCursor):
        decode_cursor(text)


def test_a_cursor_of_deep_json_is_refused_clearly() -> None:
    text = base64.urlsafe_b64encode(b"[" * 100_000).decode()
    with pytest.raises(InvalidCursor):
        decode_cursor(text)
