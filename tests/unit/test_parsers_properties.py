"""The parsers over hostile input: each returns data or raises its own clear error
type, never anything else, whatever a source sends (extreme dates and offsets,
huge and empty values, random bytes, XML-ish and HTML-ish soup)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.charset import decode, xml_as_utf8
from services.ingest.dates import from_utc_struct, parse_date
from services.ingest.feeds import FeedError, FeedParse, parse_feed, requested_interval
from services.ingest.kinds import document_kind
from services.ingest.listing import (
    Listing,
    advertised_feeds,
    is_article_page,
    parse_html,
    parse_listing,
)
from services.ingest.sitemaps import Sitemap, SitemapError, parse_sitemap
from services.ingest.sources import Source
from services.ingest.urls import canonicalize_url, is_web_url
from shared.events import is_http_url

FETCHED_AT = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
ZONES = ["UTC", "Asia/Almaty", "Asia/Tashkent", "Pacific/Kiritimati", "Etc/GMT+12"]
# Modest: the whole suite must stay quick; the strategies aim at the edges.
hostile = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- dates -------------------------------------------------------------------------------

years = st.one_of(st.sampled_from([1, 2, 1970, 1990, 1991, 2026, 9998, 9999]), st.integers(1, 9999))
offsets = st.one_of(
    st.sampled_from(
        ["", "Z", "+05:00", "-05:00", "+23:59", "-23:59", "+14:00", "-12:00", "+0500", "-0000"]
    ),
    st.builds(
        lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
        st.sampled_from("+-"),
        st.integers(0, 23),
        st.integers(0, 59),
    ),
)


@st.composite
def iso_dates(draw: st.DrawFn) -> str:
    year, month = draw(years), draw(st.integers(1, 12))
    day, hour = draw(st.integers(1, 31)), draw(st.integers(0, 23))
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:00:00{draw(offsets)}"


@st.composite
def rfc822_dates(draw: st.DrawFn) -> str:
    year = draw(st.one_of(years, st.integers(0, 10**12)))
    zone = draw(st.sampled_from(["GMT", "UT", "EST", "+0500", "-1200", "+9999", "-0000", ""]))
    day = draw(st.integers(0, 40))
    return f"Mon, {day:02d} Jan {year} 23:59:59 {zone}".strip()


date_texts = st.one_of(
    iso_dates(),
    rfc822_dates(),
    st.text(max_size=40),
    st.sampled_from(["", " ", "0", "-1", "Z", "9" * 5000]),
)


@pytest.mark.parametrize(
    ("value", "zone"),
    [
        ("0001-01-01T00:00:00", "Asia/Almaty"),  # the date of the issue: before year 1 in UTC
        ("0001-01-01T00:00:00+05:00", "UTC"),
        ("9999-12-31T23:59:59-05:00", "UTC"),
        ("9999-12-31T23:59:59", "Etc/GMT+12"),
    ],
)
def test_dates_beyond_year_1_or_9999_in_utc_are_unknown(value: str, zone: str) -> None:
    assert parse_date(value, ZoneInfo(zone), FETCHED_AT) is None


@hostile
@given(value=date_texts, zone=st.sampled_from(ZONES))
def test_parse_date_gives_a_plausible_utc_moment_or_none(value: str, zone: str) -> None:
    moment = parse_date(value, ZoneInfo(zone), FETCHED_AT)
    if moment is not None:
        assert moment.tzinfo == UTC
        assert datetime(1991, 1, 1, tzinfo=UTC) <= moment <= FETCHED_AT + timedelta(days=1)


@hostile
@given(
    st.tuples(
        st.integers(-(10**6), 10**6),
        st.integers(-100, 100),
        st.integers(-100, 100),
        st.integers(-100, 100),
        st.integers(-100, 100),
        st.integers(-100, 100),
        st.integers(0, 6),
        st.integers(0, 366),
        st.integers(-1, 1),
    )
)
def test_a_time_tuple_of_any_values_gives_a_moment_or_none(fields: tuple[int, ...]) -> None:
    moment = from_utc_struct(time.struct_time(fields), FETCHED_AT)
    assert moment is None or moment.tzinfo == UTC


# --- feeds -------------------------------------------------------------------------------


def _text(max_size: int = 30) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=max_size),
        st.sampled_from(
            [
                "",
                " ",
                "<![CDATA[x]]>",
                "&amp;",
                "&bogus;",
                "\x00",
                "²",
                "٣",
                "9" * 5000,
                "-1",
                "0",
                "x" * 10_000,
            ]
        ),
    )


@st.composite
def feeds(draw: st.DrawFn) -> bytes:
    """RSS 2.0 or Atom with hostile values where the fields go, sometimes cut short."""

    def field(strategy: st.SearchStrategy[str]) -> str:
        value = draw(strategy)
        return value if draw(st.booleans()) else escape(value)

    links = st.one_of(
        _text(),
        st.sampled_from(
            [
                "https://a.example/x",
                "http://[::1",
                "https://a.example:99999/x",
                "https://[zz]/",
                "https://a.example/" + "p" * 5000,
                "/etc/hostname",
                "file:///etc/hostname",
            ]
        ),
    )
    dates = st.one_of(date_texts, st.sampled_from(["0001-01-01T00:00:00+05:00"]))
    items = []
    for _ in range(draw(st.integers(0, 4))):
        items.append(
            f"<item><title>{field(_text())}</title><link>{field(links)}</link>"
            f"<guid>{field(_text())}</guid><pubDate>{field(dates)}</pubDate>"
            f"<description>{field(_text())}</description>"
            f"<category>{field(_text())}</category><language>{field(_text())}</language></item>"
        )
    channel = (
        f"<title>{field(_text())}</title><ttl>{field(_text())}</ttl>"
        f"<sy:updatePeriod>{field(_text())}</sy:updatePeriod>"
        f"<sy:updateFrequency>{field(_text())}</sy:updateFrequency>"
        f"<language>{field(_text())}</language>"
    )
    if draw(st.booleans()):
        document = (
            '<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">'
            f"<channel>{channel}{''.join(items)}</channel></rss>"
        )
    else:
        entries = "".join(
            f'<entry><title>{field(_text())}</title><link href="{field(links)}"/>'
            f"<id>{field(_text())}</id><updated>{field(dates)}</updated>"
            f"<published>{field(dates)}</published></entry>"
            for _ in items
        )
        document = f'<feed xmlns="http://www.w3.org/2005/Atom">{channel}{entries}</feed>'
    encoded = document.encode("utf-8", errors="surrogatepass")
    return encoded[: draw(st.integers(0, len(encoded)))] if draw(st.booleans()) else encoded


def _read_feed(content: bytes) -> FeedParse | None:
    source = Source(name="x", url="x", timezone="Asia/Almaty")
    try:
        return parse_feed(content, source, FETCHED_AT)
    except FeedError:
        return None


@hostile
@given(st.one_of(feeds(), st.binary(max_size=2000)))
def test_parse_feed_gives_a_feed_or_a_feed_error(content: bytes) -> None:
    parsed = _read_feed(content)
    if parsed is not None:
        assert all(e.url.startswith(("http://", "https://")) for e in parsed.events)
        assert parsed.requested_interval is None or parsed.requested_interval > 0


@hostile
@given(st.one_of(feeds(), st.binary(max_size=2000)), st.one_of(st.none(), st.text(max_size=40)))
def test_a_feed_re_encoded_from_any_bytes_and_header_still_parses_or_says_why(
    content: bytes, content_type: str | None
) -> None:
    _read_feed(xml_as_utf8(content, content_type))


@hostile
@given(st.dictionaries(st.sampled_from(["ttl", "sy_updateperiod", "sy_updatefrequency"]), _text()))
def test_requested_interval_of_any_channel_is_a_positive_number_or_none(
    channel: dict[str, str],
) -> None:
    asked = requested_interval(channel)
    assert asked is None or asked > 0


@hostile
@given(
    st.binary(max_size=3000),
    st.one_of(
        st.none(),
        st.sampled_from(
            [
                "text/html; charset=idna",
                "charset=punycode",
                "charset=utf-7",
                "charset=unicode_escape",
                "charset=rot13",
                "charset=base64",
                "charset=",
                "charset=utf-32",
            ]
        ),
        st.text(max_size=40),
    ),
)
def test_any_bytes_decode_to_text_and_have_a_kind(content: bytes, content_type: str | None) -> None:
    text, encoding = decode(content, content_type)
    assert isinstance(text, str)
    assert encoding
    assert document_kind(content) in ("feed", "sitemap", "html")


# --- sitemaps ----------------------------------------------------------------------------


@st.composite
def sitemaps(draw: st.DrawFn) -> bytes:
    locs = st.one_of(
        _text(), st.sampled_from(["https://a.example/1", "http://[::1", "https://a.example:99999/"])
    )
    dates = st.one_of(date_texts, st.just("0001-01-01T00:00:00+05:00"))
    index = draw(st.booleans())
    node, root = ("sitemap", "sitemapindex") if index else ("url", "urlset")
    children = "".join(
        f"<{node}><loc>{escape(draw(locs))}</loc><lastmod>{escape(draw(dates))}</lastmod>"
        f"<news:news><news:publication><news:language>{escape(draw(_text()))}</news:language>"
        f"</news:publication><news:publication_date>{escape(draw(dates))}"
        f"</news:publication_date><news:title>{escape(draw(_text()))}</news:title>"
        f"<news:keywords>{escape(draw(_text()))}</news:keywords></news:news></{node}>"
        for _ in range(draw(st.integers(0, 4)))
    )
    prolog = draw(
        st.sampled_from(
            [
                "",
                '<?xml version="1.0"?>',
                '<?xml version="1.0" encoding="koi8-r"?>',
                '<!DOCTYPE x [<!ENTITY e "e">]>',
            ]
        )
    )
    document = (
        f'{prolog}<{root} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{children}</{root}>'
    )
    encoded = document.encode("utf-8", errors="surrogatepass")
    return encoded[: draw(st.integers(0, len(encoded)))] if draw(st.booleans()) else encoded


@hostile
@given(st.one_of(sitemaps(), st.binary(max_size=2000)))
def test_parse_sitemap_gives_a_sitemap_or_a_sitemap_error(content: bytes) -> None:
    try:
        sitemap = parse_sitemap(content)
    except SitemapError:
        return
    assert isinstance(sitemap, Sitemap)
    for entry in [*sitemap.entries, *sitemap.children]:
        assert entry.url.startswith(("http://", "https://"))
        parse_date(entry.date, ZoneInfo("Asia/Almaty"), FETCHED_AT)  # what polls do with it


# --- listing pages -----------------------------------------------------------------------

hrefs = st.one_of(
    _text(),
    st.sampled_from(
        [
            "http://[::1",
            "https://[zz]/a",
            "https://a.example:99999/news/1",
            "//[::1/x",
            "javascript:alert(1)",
            "#top",
            "/news/a-long-enough-headline",
            "https://b.example/x",
            "https://a.example/" + "n" * 5000,
            "mailto:x@a.example",
            " ",
            "\x00",
        ]
    ),
)


@st.composite
def html_pages(draw: st.DrawFn) -> str:
    def attr(strategy: st.SearchStrategy[str]) -> str:
        return escape(draw(strategy), {'"': "&quot;"})

    anchors = "".join(
        f"<{draw(st.sampled_from(['h2', 'article', 'li', 'div', 'h3']))}>"
        f'<a href="{attr(hrefs)}" class="{attr(_text())}" rel="{attr(_text())}" '
        f'aria-label="{attr(_text())}">{escape(draw(_text(80)))}</a></h2>'
        for _ in range(draw(st.integers(0, 6)))
    )
    head = (
        f'<base href="{attr(hrefs)}"><link rel="alternate" type="application/rss+xml" '
        f'href="{attr(hrefs)}"><link rel="next" href="{attr(hrefs)}">'
        f'<meta property="og:type" content="{attr(_text())}">'
        f'<script type="application/ld+json">{escape(draw(_text()))}</script>'
    )
    page = f"<html><head>{head}</head><body>{anchors}</body></html>"
    return page[: draw(st.integers(0, len(page)))] if draw(st.booleans()) else page


@hostile
@given(
    st.one_of(html_pages(), st.text(max_size=2000)),
    st.sampled_from(["https://a.example/news/", "https://a.example", "http://[::1]:8080/x"]),
)
def test_a_listing_page_gives_links_or_nothing(html: str, base_url: str) -> None:
    root = parse_html(html)
    if root is None:
        return
    assert isinstance(is_article_page(root), bool)
    listing = parse_listing(root, base_url)
    assert isinstance(listing, Listing)
    for url in [
        *(link.url for link in listing.links),
        *listing.feeds,
        *([listing.next_page] if listing.next_page else []),
    ]:
        assert url.startswith(("http://", "https://"))
    assert all(url.startswith(("http://", "https://")) for url in advertised_feeds(root, base_url))


# --- URLs --------------------------------------------------------------------------------


def _host(url: str) -> str | None:
    """The host of `url`, or None when it has none or urlsplit cannot read it."""
    try:
        parts = urlsplit(url)
        parts.port  # raises past 65535
    except ValueError:
        return None
    return parts.hostname or None


@hostile
@given(
    st.sampled_from(["http://", "https://", "HTTP://", " https://", "ftp://"]),
    st.text(alphabet=st.sampled_from("a.-[]:@%/?#&= \t\n\x00\u0130\u212a1:9"), max_size=24),
    st.text(max_size=12),
)
def test_a_web_url_is_one_canonicalize_url_can_key(scheme: str, authority: str, rest: str) -> None:
    # What is_web_url promises the code after it: canonicalize_url reads the URL, and
    # the article key it gives names a host. Only URLs without a host, or that no
    # event may carry (whitespace after ://, no UTF-8, a host no name holds), are refused.
    url = scheme + authority + rest
    if is_web_url(url):
        assert _host(canonicalize_url(url))
    elif url.startswith(("http://", "https://")) and is_http_url(url):
        host = _host(url.strip())
        assert host is None or not _encodable(url) or not _NAME_OR_IPV6.fullmatch(host)


# A host name's characters (any script beyond ASCII), or an IPv6 address's.
_NAME_OR_IPV6 = re.compile(r"[a-z0-9._~\u0080-\U0010ffff-]+|[0-9a-f:.]+")


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
