"""Article pages to ArticleEvents: extraction on real pages, dates, canonical URLs, fallbacks."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from trafilatura.metadata import extract_author, extract_catstags, extract_metadata
from trafilatura.xpaths import AUTHOR_DISCARD_XPATHS, AUTHOR_XPATHS

from services.ingest.articles import (
    TITLE_HTML_CHARS,
    Lead,
    NoArticleError,
    canonical_for,
    lead_event,
    page_event,
)
from services.ingest.dates import parse_date
from services.ingest.extract import (
    Extracted,
    categories_or_tags,
    extract_article,
    page_author,
    page_metadata,
    parse_page,
    without_code,
)
from services.ingest.feeds import parse_feed
from services.ingest.sources import Source
from shared.events import LABEL_CHARS, LABELS, TITLE_CHARS, language_code
from tests.conftest import REALDATA

FETCHED = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ALMATY = ZoneInfo("Asia/Almaty")


def _page(name: str) -> str:
    return (REALDATA / name).read_text(encoding="utf-8")


def test_lsm_page_gives_every_expected_paragraph_and_its_metadata() -> None:
    page = extract_article(_page("article-lsm-lv.html"), "https://www.lsm.lv/raksts/x")
    assert page is not None
    expected = (REALDATA / "article-lsm-lv.expected.txt").read_text(encoding="utf-8")
    for paragraph in expected.split("\n\n"):
        assert paragraph in page.text
    assert page.title == "Norvēģijā pēc zemes nogruvuma pieci bojāgājušie"  # no trailing newline
    assert page.authors == ["Anna Ūdre"]
    assert page.language == "lv"
    assert page.canonical_url == (
        "https://www.lsm.lv/raksts/zinas/arzemes/norvegija-pec-zemes-nogruvuma-pieci-bojagajusie"
        ".a387519/"
    )


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("article-lsm-lv.html", "https://www.lsm.lv/raksts/x"),
        ("article-heraldsun.html", "http://www.heraldsun.com.au/news/opinion/story-1227261886014"),
        ("article-dw-fruehburgunder.html", "https://www.dw.com/en/a-16863843"),
    ],
)
def test_page_metadata_is_trafilaturas_for_every_published_field(name: str, url: str) -> None:
    tree = parse_page(_page(name))
    assert tree is not None
    without_code(tree)
    ours, theirs = page_metadata(tree, url), extract_metadata(tree, url)
    # The date is page_date's (tested with the dates); the licence is not looked for.
    published = ("title", "author", "url", "sitename", "description", "categories", "tags", "image")
    assert {f: getattr(ours, f) for f in published} == {f: getattr(theirs, f) for f in published}
    assert ours.title
    assert ours.license is None


_SECTION = '<head><meta property="article:section" content="World"></head>'


@pytest.mark.parametrize(
    ("body", "categories", "tags"),
    [
        (
            '<div class="tags"><a href="/tag/rain/">Rain</a><a href="/about">About</a></div>'
            '<div class="entry-meta"><a href="/category/news/">News</a></div>',
            ["News"],
            ["Rain"],
        ),
        # No link that could be one: the categories come from the section meta tag.
        ('<div class="tags"><a href="/about">About</a></div>', ["World"], []),
        ("<p>No links at all.</p>", ["World"], []),
    ],
)
def test_categories_and_tags_are_trafilaturas(
    body: str, categories: list[str], tags: list[str]
) -> None:
    tree = parse_page(f"<html>{_SECTION}<body>{body}</body></html>")
    assert tree is not None
    for kind, expected in (("category", categories), ("tag", tags)):
        assert categories_or_tags(kind, tree) == extract_catstags(kind, tree) == expected


@pytest.mark.parametrize(
    ("body", "author"),
    [
        # The discarded <time> goes, its tail joins the text before it.
        ('<div class="byline">By <time>Monday</time>Jane Doe</div>', "Jane Doe"),
        ('<span class="writer">Jo<span class="date">x</span>hn Smith</span>', "John Smith"),
        # Nothing inside a discarded block (a sidebar, the comments) is a candidate.
        (
            '<div class="sidebar"><span class="author">Side Bar</span></div>'
            '<p class="author-name">Real Name</p>',
            "Real Name",
        ),
        (
            '<div id="comments"><a rel="author">Commenter Name</a></div>'
            '<span itemprop="author">Staff Writer</span>',
            "Staff Writer",
        ),
        # The first search's candidates before the later ones', each in document order.
        ('<div class="post-author">Later Search</div><author>Ann Other</author>', "Ann Other"),
        ('<span class="author">x</span><span class="author">Long Enough</span>', "Long Enough"),
        # XPath's rel='me' (a child <rel> saying "me"), found after the page's start.
        ("<p>Intro</p><span>Jane Roe <rel>me</rel></span>", "Jane Roe me"),
        ('<div data-component="Byline">Kim Lee</div>', "Kim Lee"),
        ("<p>Nobody signed this.</p>", None),
    ],
)
def test_page_author_is_trafilaturas(body: str, author: str | None) -> None:
    tree = parse_page(f"<html><body>{body}</body></html>")
    assert tree is not None
    assert page_author(tree) == extract_author(tree) == author


def test_page_author_follows_trafilaturas_searches() -> None:
    # page_author writes out these expressions; a trafilatura that changes them needs
    # page_author changed to match (and this digest taken again).
    expressions = "\n".join(x.path for x in (*AUTHOR_DISCARD_XPATHS, *AUTHOR_XPATHS))
    assert hashlib.sha256(expressions.encode()).hexdigest() == (
        "29298d1fa7279c607cd343aa1c4a80736b0596b305bfd93ea59b6de61624f264"
    )


def test_dw_page_keeps_the_article_and_drops_the_teasers() -> None:
    # The rules of trafilatura's own real-world test for this page.
    page = extract_article(_page("article-dw-fruehburgunder.html"), "https://www.dw.com/en/x")
    assert page is not None
    assert "No grape variety invites as much intrigue" in page.text
    assert "With just 0.9 hectares" in page.text
    for teaser in ("Related Subjects", "Audios and videos on the topic", "But boozers in Berlin"):
        assert teaser not in page.text
    assert {"Ahr Valley", "pinot noir"} <= set(page.tags)  # one comma-joined keywords string


def test_herald_sun_byline_and_title_whitespace() -> None:
    page = extract_article(_page("article-heraldsun.html"), "http://www.heraldsun.com.au/x")
    assert page is not None
    assert page.title == "Angry media won’t buckle over new surveillance laws"
    assert page.authors == ["Laurie Oakes"]
    assert page.site_name == "HeraldSun"
    assert "\t" not in page.text


@pytest.mark.parametrize(
    "html",
    [
        "<html><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav></body></html>",
        "<html><body><p>Cookies?</p></body></html>",
        "",
    ],
)
def test_a_page_without_an_article_gives_nothing(html: str) -> None:
    assert extract_article(html, "https://site.example/") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-01T10:00:00", "2024-03-01T05:00:00+00:00"),  # local time of a UTC+5 source
        ("2024-03-01", "2024-02-29T19:00:00+00:00"),
        ("2024-03-01T10:00:00+03:00", "2024-03-01T07:00:00+00:00"),
        ("2024-03-01T10:00:00Z", "2024-03-01T10:00:00+00:00"),
        ("Fri, 28 Aug 2026 15:19:10 -0000", "2026-08-28T15:19:10+00:00"),
        ("Fri, 28 Aug 2026 15:19:10 +0600", "2026-08-28T09:19:10+00:00"),
    ],
)
def test_dates_become_utc_in_the_source_zone(value: str, expected: str) -> None:
    moment = parse_date(value, ALMATY, FETCHED)
    assert moment is not None
    assert moment.isoformat() == expected


@pytest.mark.parametrize(
    "value",
    [
        "2099-01-01",
        "1970-01-01T00:00:00Z",
        "yesterday",
        "",
        None,
        "2026-11-29T12:00:00+00:00",
        # Placeholders, which RFC 2822's reading of two-digit years made 2001 and 2000.
        "Mon, 01 Jan 0001 00:00:00 GMT",
        "Sat, 01 Jan 0000 00:00:00 GMT",
        "Mon, 01-Jan-0001 00:00:00 GMT",
    ],
)
def test_absurd_or_unreadable_dates_are_unknown(value: str | None) -> None:
    assert parse_date(value, ALMATY, FETCHED) is None


@pytest.mark.parametrize(
    ("link", "declared", "expected"),
    [
        (
            "https://www.site.kz/news/1?utm_source=rss",
            "https://site.kz/news/1/amp#top",
            "https://site.kz/news/1/amp",
        ),
        ("https://site.kz/news/1", "https://site.kz/", "https://site.kz/news/1"),  # home page
        # Home and section pages declared by every article merged them all into one.
        ("https://site.kz/ru/news/1-vote", "https://site.kz/ru/", "https://site.kz/ru/news/1-vote"),
        ("https://site.kz/news/1", "https://site.kz/index.php", "https://site.kz/news/1"),
        ("https://site.kz/news/1", "https://site.kz/ru/Default.aspx", "https://site.kz/news/1"),
        ("https://site.kz/news/1", "https://site.kz/news/", "https://site.kz/news/1"),
        (
            "https://site.kz/ru/news/123-vote",
            "https://site.kz/ru/news/",
            "https://site.kz/ru/news/123-vote",
        ),
        ("https://site.kz/news/1", "https://site.kz/home", "https://site.kz/news/1"),
        # An article's own shorter address, its id in the query, a one-segment permalink.
        ("https://site.kz/my-post/amp/", "https://site.kz/my-post/", "https://site.kz/my-post/"),
        (
            "https://site.kz/amp/index.php?newsid=5",
            "https://site.kz/index.php?newsid=5",
            "https://site.kz/index.php?newsid=5",
        ),
        ("https://site.kz/news/123/vote", "https://site.kz/news/123", "https://site.kz/news/123"),
        ("https://site.kz/news/1/amp/", "https://site.kz/news/1/", "https://site.kz/news/1/"),
        (
            "https://site.kz/?p=12",
            "https://site.kz/vote-on-the-budget/",
            "https://site.kz/vote-on-the-budget/",
        ),
        ("https://site.kz/news/1", "https://partner.example/story", "https://site.kz/news/1"),
        ("https://site.kz/news/1?utm_medium=x", None, "https://site.kz/news/1"),
        ("https://site.kz/news/1", "/relative", "https://site.kz/news/1"),
        # No web address: as if none were declared, not a lost article.
        ("https://site.kz/news/1", "https://site.kz:99999/news/1", "https://site.kz/news/1"),
        ("https://site.kz/news/1", "https://site.kz:8O/news/1", "https://site.kz/news/1"),
        ("https://site.kz/news/1", "http://[site.kz/news/1", "https://site.kz/news/1"),
    ],
)
def test_canonical_url_from_the_page_only_when_plausible(
    link: str, declared: str | None, expected: str
) -> None:
    assert canonical_for(link, declared) == expected


SOURCE = Source(
    name="kz",
    url="https://site.kz/rss",
    tags=("politics",),
    countries=("KZ",),
    language="ru",
    timezone="Asia/Almaty",
)


def test_page_event_prefers_the_page_text_and_the_leads_date() -> None:
    page = extract_article(_page("article-lsm-lv.html"), "https://www.lsm.lv/raksts/x")
    assert page is not None
    lead = Lead(
        url="https://www.lsm.lv/raksts/x?utm_source=rss",
        title="Feed title",
        summary="Feed summary",
        tags=["Pasaulē"],
        published_at=datetime(2021, 1, 3, 15, 40, tzinfo=UTC),
    )
    event = page_event(lead, page, SOURCE, "https://www.lsm.lv/raksts/x", FETCHED)
    assert event.title == page.title
    assert event.body == page.text
    assert event.summary == "Feed summary"
    assert event.published_at == lead.published_at
    assert event.language == "lv"
    assert {"politics", "Pasaulē"} <= set(event.tags)
    assert event.countries == ["KZ"]
    assert event.extraction == "page"


def test_what_a_page_or_feed_labels_an_article_with_is_bounded() -> None:
    # Each of these, written by one page or feed, cost the article: Elasticsearch
    # refuses a keyword past 32,766 bytes (a dead letter), and a title of a megabyte
    # went out with every search that found it.
    huge = "x" * 33_000
    page = Extracted(
        title="word " * 50_000,
        text="Body.",
        authors=["Ann", huge],
        tags=[f"tag{n:05}" for n in range(10_000)] + [huge],
        language=huge,
        image="javascript:alert(1)",
    )
    lead = Lead(url="https://site.kz/a", language=huge, authors=[huge])
    event = page_event(lead, page, SOURCE, "https://site.kz/a", FETCHED)
    assert event.title.endswith("word…")
    assert len(event.title) <= TITLE_CHARS + 1
    assert event.authors == ["Ann"]
    # The source's own tag always, and the same page tags poll after poll.
    assert event.tags == sorted(["politics", *[f"tag{n:05}" for n in range(LABELS)]])
    assert max(map(len, event.tags)) <= LABEL_CHARS
    assert event.language == "ru"  # the source's
    assert event.image_url is None
    fallback = lead_event(
        Lead(url="https://site.kz/b", title="t " * 1000, tags=[huge], language="uz-Latn"),
        SOURCE,
        FETCHED,
    )
    assert len(fallback.title) <= TITLE_CHARS + 1
    assert fallback.tags == ["politics"]
    assert fallback.language == "uz"
    keywords = [f"k{n:02}" for n in range(60)] * 2  # a sitemap's news:keywords, repeated
    repeated = lead_event(Lead(url="https://site.kz/d", title="t", tags=keywords), SOURCE, FETCHED)
    assert repeated.tags == sorted(["politics", *[f"k{n:02}" for n in range(LABELS)]])
    many = "".join(f"<category>c{n:03}</category>" for n in range(60))
    feed = (
        "<rss><channel><title>t</title><item><title>" + "t " * 1000 + "</title>"
        "<link>https://site.kz/c</link>" + many + f"<category>{huge}</category>"
        f"<dc:creator xmlns:dc='http://purl.org/dc/elements/1.1/'>{huge}</dc:creator>"
        f"<dc:language xmlns:dc='http://purl.org/dc/elements/1.1/'>{huge}</dc:language>"
        "</item></channel></rss>"
    )
    (item,) = parse_feed(feed.encode(), SOURCE, FETCHED).events
    assert len(item.title) <= TITLE_CHARS + 1
    assert item.tags == sorted(["politics", *[f"c{n:03}" for n in range(LABELS)]])
    assert (item.authors, item.language) == ([], "ru")


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("ru", "ru"),
        ("uzb", "uzb"),
        ("uz-Latn", "uz"),
        ("ru_RU", "ru"),
        (" EN-us ", "en"),
        ("en us; x", None),
        ("", None),
        ("r", None),
        ("x" * 33_000, None),
        (None, None),
    ],
)
def test_a_language_is_an_iso_639_code_or_none(written: str | None, code: str | None) -> None:
    assert language_code(written) == code


def test_page_event_without_a_lead_date_reads_the_pages_in_the_source_zone() -> None:
    page = extract_article(_page("article-lsm-lv.html"), "https://www.lsm.lv/raksts/x")
    assert page is not None
    event = page_event(
        Lead(url="https://www.lsm.lv/raksts/x"),
        page,
        SOURCE,
        "https://www.lsm.lv/raksts/x",
        FETCHED,
    )
    # 2021-01-03T17:40:00 written without an offset, read as Asia/Almaty time.
    assert event.published_at == datetime(2021, 1, 3, 17, 40, tzinfo=ALMATY)


@pytest.mark.parametrize(
    ("stated", "moment"),
    [
        ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
        ("2026-11-27T10:00:00+03:00", datetime(2026, 11, 27, 7, 0, tzinfo=UTC)),
        ("2026-11-27T05:00:00-05:00", datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
    ],
)
def test_a_pages_own_offset_is_kept(stated: str, moment: datetime) -> None:
    # The offset was dropped and the time read in the source's zone: a CMS writing UTC
    # had every article dated five hours early here, out of order and on the wrong day.
    html = (
        f'<html><head><meta property="article:published_time" content="{stated}">'
        "<title>Budget vote</title></head><body><article><h1>Budget vote</h1>"
        f"<p>{'The parliament voted on the budget today. ' * 12}</p></article></body></html>"
    )
    page = extract_article(html, "https://site.kz/budget-vote")
    assert page is not None
    event = page_event(
        Lead(url="https://site.kz/budget-vote"),
        page,
        SOURCE,
        "https://site.kz/budget-vote",
        FETCHED,
    )
    assert event.published_at == moment


def test_lead_event_is_the_fallback_and_needs_a_title() -> None:
    event = lead_event(
        Lead(url="https://site.kz/a?gclid=1", title="<b>Title</b> &amp; more", summary="Summary"),
        SOURCE,
        FETCHED,
    )
    assert (event.title, event.body, event.extraction) == ("Title & more", "Summary", "feed")
    assert event.canonical_url == "https://site.kz/a"
    with pytest.raises(NoArticleError, match="no title"):
        lead_event(Lead(url="https://site.kz/b"), SOURCE, FETCHED)


def test_a_lead_title_of_megabytes_is_read_by_its_first_characters() -> None:
    # A sitemap's news:title of 2.4 million tags: parsed whole, 6 s and 1.1 GB.
    event = lead_event(Lead(url="https://site.kz/a", title="<p>a" * 2_400_000), SOURCE, FETCHED)
    words = event.title.removesuffix("…").split()
    assert set(words) == {"a"}
    assert len(event.title) <= TITLE_CHARS + 1 < TITLE_HTML_CHARS


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Fri, 28 Aug 2026 15:19:10", "2026-08-28T10:19:10+00:00"),  # no zone: Almaty time
        ("2026-08-28T15:19:10", "2026-08-28T10:19:10+00:00"),
        ("Fri, 28 Aug 2026 15:19:10 -0000", "2026-08-28T15:19:10+00:00"),
        ("Fri, 28 Aug 2026 15:19:10 GMT", "2026-08-28T15:19:10+00:00"),
        ("2026-08-28T15:19:10+06:00", "2026-08-28T09:19:10+00:00"),
    ],
)
def test_feed_dates_without_a_zone_are_the_sources_local_time(written: str, expected: str) -> None:
    feed = (
        f'<rss version="2.0"><channel><title>t</title><item><title>a</title>'
        f"<link>https://site.kz/a</link><pubDate>{written}</pubDate></item></channel></rss>"
    )
    (event,) = parse_feed(feed.encode(), SOURCE, FETCHED).events
    assert event.published_at is not None
    assert event.published_at.isoformat() == expected


def test_a_page_of_many_keywords_hands_back_only_those_an_article_keeps() -> None:
    # Extraction runs in the parse sandbox, but its tags went back to the event loop
    # whole: a million keywords, sorted there, held it for most of a second.
    keywords = ", ".join(f"k{n:06}" for n in range(20_000))
    body = "".join(
        f"<p>Sentence {n} of the article about the budget of Kazakhstan.</p>" for n in range(40)
    )
    html = (
        f'<html><head><title>Budget</title><meta name="keywords" content="{keywords}">'
        f"</head><body><article><h1>Budget</h1>{body}</article></body></html>"
    )
    page = extract_article(html, "https://site.kz/a")
    assert page is not None
    assert page.tags == [f"k{n:06}" for n in range(LABELS)]
