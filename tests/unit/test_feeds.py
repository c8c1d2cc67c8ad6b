"""parse_feed on real third-party feeds (samples/realdata) and on invented bad input."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import feedparser.api
import pytest

from services.ingest.feeds import SKIPPED_KEPT, FeedError, FeedParse, parse_feed
from services.ingest.sources import Source, load_sources
from services.ingest.urls import canonicalize_url
from shared.events import SUMMARY_CHARS, article_key, content_hash

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
REALDATA = SAMPLES / "realdata"
# After every date in the sample feeds (andijonfk.uz dates are in August 2026).
FETCHED_AT = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sources() -> dict[str, Source]:
    """The real bundled sources config, keyed by the feed file name."""
    return {Path(s.url).name: s for s in load_sources(SAMPLES / "sources.toml")}


def _parse(name: str, sources: dict[str, Source], fetched_at: datetime = FETCHED_AT) -> FeedParse:
    return parse_feed((REALDATA / name).read_bytes(), sources[name], fetched_at)


def _rss(items: str, channel_extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Invented</title><link>https://invented.example/</link>{channel_extra}"
        f"{items}</channel></rss>"
    ).encode()


# --- feed-andijonfk-uz.xml ---------------------------------------------------------------


def test_andijon_two_items_with_decoded_uzbek_apostrophes(sources: dict[str, Source]) -> None:
    parsed = _parse("feed-andijonfk-uz.xml", sources)
    assert parsed.warning is None
    assert parsed.skipped == []
    assert parsed.title == "FK Andijon — yangiliklar"
    assert [e.title for e in parsed.events] == [
        "Damir Temirov: “Haqli g'alabaga erishdik”",
        "Bugun Bobur Arenada: Andijon — Xorazm",
    ]
    assert parsed.events[0].summary == "Haqli g'alabaga erishdik"
    assert "o'z maydonida" in parsed.events[1].summary
    assert all("&#x27;" not in e.title + e.summary for e in parsed.events)


def test_andijon_minus_0000_dates_are_utc(sources: dict[str, Source]) -> None:
    events = _parse("feed-andijonfk-uz.xml", sources).events
    assert [e.published_at for e in events] == [
        datetime(2026, 8, 28, 15, 19, 10, tzinfo=UTC),
        datetime(2026, 8, 25, 6, 3, 17, tzinfo=UTC),
    ]
    assert all(
        e.published_at is not None and e.published_at.utcoffset() == timedelta(0) for e in events
    )


def test_andijon_language_tags_countries_and_source(sources: dict[str, Source]) -> None:
    events = _parse("feed-andijonfk-uz.xml", sources).events
    for event in events:
        assert event.language == "uz"
        assert event.source == "andijonfk.uz"
        assert event.tags == ["sport"]
        assert event.countries == ["UZ"]
        assert event.fetched_at == FETCHED_AT
        assert event.canonical_url == event.url  # already canonical: https, no query
        assert event.idempotency_key == article_key(event.url)
        assert event.body == event.summary  # no content:encoded, so the summary stands in
        assert event.content_hash == content_hash(event.title, event.summary)


def test_andijon_dates_after_fetch_time_are_unknown(sources: dict[str, Source]) -> None:
    # Fetched in early August 2026, the late-August dates are in the future: unknown.
    early = datetime(2026, 8, 1, tzinfo=UTC)
    events = _parse("feed-andijonfk-uz.xml", sources, fetched_at=early).events
    assert len(events) == 2
    assert all(e.published_at is None for e in events)


# --- feed-heise-developer.atom -----------------------------------------------------------


def test_heise_fifteen_entries_umlauts_intact(sources: dict[str, Source]) -> None:
    parsed = _parse("feed-heise-developer.atom", sources)
    assert parsed.warning is None
    assert len(parsed.events) == 15
    assert parsed.skipped == []
    titles = [e.title for e in parsed.events]
    assert "Scrum Day 2016: Bewerbungen für Vorträge und Workshops" in titles
    assert "Microsoft veröffentlicht Cordova-Erweiterung für Visual Studio Code" in titles
    assert "Facebook schließt Parse-Plattform" in titles
    assert "Änderungen bei der Authentifizierung in Microsofts v2.0 App Model" in titles
    assert all(e.language == "de" for e in parsed.events)  # from sources.toml: no <language>
    assert all(e.tags == ["technology"] for e in parsed.events)


def test_heise_published_plus_0100_is_converted_to_utc(sources: dict[str, Source]) -> None:
    first = _parse("feed-heise-developer.atom", sources).events[0]
    # <published>2016-02-01T17:22:00+01:00</published>
    expected = datetime(2016, 2, 1, 17, 22, tzinfo=timezone(timedelta(hours=1)))
    assert first.published_at == expected
    assert first.published_at is not None
    assert first.published_at.tzinfo == UTC
    assert first.published_at.hour == 16


def test_heise_all_published_dates_match_the_file(sources: dict[str, Source]) -> None:
    raw = (REALDATA / "feed-heise-developer.atom").read_text(encoding="utf-8")
    published = [datetime.fromisoformat(p) for p in re.findall(r"<published>([^<]+)<", raw)]
    events = _parse("feed-heise-developer.atom", sources).events
    assert [e.published_at for e in events] == published


def test_heise_content_html_becomes_body_text(sources: dict[str, Source]) -> None:
    first = _parse("feed-heise-developer.atom", sources).events[0]
    assert first.body.startswith("Die nun verfügbare Version 10 des Enterprise-Java-Servers")
    assert "<" not in first.body
    assert "jpeg" not in first.body  # the <a><img></a> before the paragraph leaves no text
    # The content's only paragraph repeats the summary.
    assert first.body == first.summary
    assert "größere Release" in first.body


def test_heise_double_escaped_quote_is_decoded_once(sources: dict[str, Source]) -> None:
    events = _parse("feed-heise-developer.atom", sources).events
    (summary,) = [e.summary for e in events if "instanceof-Operator" in e.summary]
    # In the file: `&amp;quot;Klasse&amp;quot;` inside an html-typed summary.
    assert 'der gleichen "Klasse" arbeitet' in summary


# --- feed-meduza-scraped.xml -------------------------------------------------------------


def test_meduza_shared_link_still_gives_24_distinct_keys(sources: dict[str, Source]) -> None:
    events = _parse("feed-meduza-scraped.xml", sources).events
    assert len(events) == 24
    assert {e.url for e in events} == {"https://meduza.io/"}
    assert len({e.canonical_url for e in events}) == 24
    assert len({e.idempotency_key for e in events}) == 24
    assert all(e.canonical_url.startswith("https://meduza.io/") for e in events)


def test_meduza_epoch_dates_become_unknown(sources: dict[str, Source]) -> None:
    events = _parse("feed-meduza-scraped.xml", sources).events
    assert all(e.published_at is None for e in events)


def test_meduza_cyrillic_and_source_language(sources: dict[str, Source]) -> None:
    events = _parse("feed-meduza-scraped.xml", sources).events
    assert events[0].title.startswith("Сто лет назад родилась Майя Плисецкая")
    assert all(e.language == "ru" for e in events)  # the feed has no <language>
    assert any("🎪" in e.title for e in events)


def test_meduza_keys_are_stable_across_polls(sources: dict[str, Source]) -> None:
    first = _parse("feed-meduza-scraped.xml", sources).events
    later = _parse(
        "feed-meduza-scraped.xml", sources, fetched_at=FETCHED_AT + timedelta(hours=1)
    ).events
    assert [e.idempotency_key for e in first] == [e.idempotency_key for e in later]
    assert all(b.version > a.version for a, b in zip(first, later, strict=True))


# --- feed-uol-noticias.rss ---------------------------------------------------------------


def test_uol_portuguese_day_names_give_unknown_dates(sources: dict[str, Source]) -> None:
    parsed = _parse("feed-uol-noticias.rss", sources)
    assert len(parsed.events) == 15
    assert parsed.skipped == []
    assert all(e.published_at is None for e in parsed.events)


def test_uol_cdata_links_empty_descriptions_and_language(sources: dict[str, Source]) -> None:
    events = _parse("feed-uol-noticias.rss", sources).events
    assert events[0].title == (
        "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno"
    )
    assert all(e.url.startswith("https://") for e in events)
    assert all(e.language == "pt" for e in events)  # <language></language> is empty
    # The file has 4 empty <description></description> elements.
    assert sum(1 for e in events if e.summary == "") == 4
    assert events[0].summary.startswith("Líder na pesquisa Ibope")  # no <img>, no leading space


def test_uol_duplicate_story_under_two_links_stays_two_articles(
    sources: dict[str, Source],
) -> None:
    events = _parse("feed-uol-noticias.rss", sources).events
    twins = [e for e in events if e.title.startswith("Match Eleitoral já soma")]
    assert len(twins) == 2
    assert twins[0].canonical_url != twins[1].canonical_url


def test_uol_language_falls_back_to_none_without_source_language() -> None:
    content = (REALDATA / "feed-uol-noticias.rss").read_bytes()
    events = parse_feed(content, Source(name="uol", url="x"), FETCHED_AT).events
    assert all(e.language is None for e in events)


# --- feed-nenoksa-turbo-malformed.xml ----------------------------------------------------


def test_nenoksa_malformed_feed_warns_and_skips_its_titleless_item(
    sources: dict[str, Source],
) -> None:
    parsed = _parse("feed-nenoksa-turbo-malformed.xml", sources)
    assert parsed.warning is not None
    assert "not well-formed" in parsed.warning
    assert parsed.events == []
    assert len(parsed.skipped) == 1
    assert parsed.skipped[0].reason == "no title"
    assert parsed.skipped[0].position == 0
    assert parsed.title == "Ненокса_навигатор"


# --- invented bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello world, not a feed",
        b'{"items": []}',
        b"<html><body><p>503 Service Unavailable</p></body></html>",
    ],
)
def test_not_a_feed_raises_feed_error(content: bytes) -> None:
    with pytest.raises(FeedError, match="not a readable RSS/Atom feed"):
        parse_feed(content, Source(name="x", url="x"), FETCHED_AT)


def test_item_without_usable_link_is_skipped_with_reason() -> None:
    content = _rss(
        "<item><title>No link at all</title></item>"
        "<item><title>Relative</title><link>/news/1</link></item>"
        "<item><title>Broken</title><link>http://[::1/news/2</link></item>"
        "<item><title>Fine</title><link>https://invented.example/a</link></item>"
    )
    parsed = parse_feed(content, Source(name="x", url="x"), FETCHED_AT)
    assert [e.title for e in parsed.events] == ["Fine"]
    assert [(s.position, s.reason) for s in parsed.skipped] == [
        (0, "no usable link ('')"),
        (1, "no usable link ('/news/1')"),
        (2, "no usable link ('http://[::1/news/2')"),
    ]


def test_an_item_the_contract_refuses_is_left_out_not_the_feed() -> None:
    # A link a pretty-printer wrapped has a host to urlsplit, and the event refused it:
    # the whole feed failed, every poll.
    content = _rss(
        "<item><title>Wrapped</title><link>https://\n      invented.example/a</link></item>"
        "<item><title>Fine</title><link>https://invented.example/b</link></item>"
    )
    parsed = parse_feed(content, Source(name="x", url="x"), FETCHED_AT)
    assert [e.title for e in parsed.events] == ["Fine"]
    assert [s.position for s in parsed.skipped] == [0]


def test_an_items_own_fields_say_so_and_its_summary_is_a_teaser() -> None:
    # A description that is the whole article is its body, and only its start the
    # summary: the text went out twice, an event twice the item's size.
    words = " ".join(f"word{n}" for n in range(3000))
    content = _rss(
        f"<item><title>Whole</title><link>https://invented.example/a</link>"
        f"<description>{words}</description></item>"
    )
    [event] = parse_feed(content, Source(name="x", url="x"), FETCHED_AT).events
    assert event.extraction == "feed"
    assert event.body == words
    assert len(event.summary) <= SUMMARY_CHARS
    assert words.startswith(event.summary.removesuffix("…"))
    assert event.content_hash == content_hash("Whole", words)  # as before the bound


def test_a_guid_too_long_for_a_key_is_keyed_by_its_digest() -> None:
    guid = "Қ" * 17_000  # 34,000 bytes: past what a keyword holds
    items = "".join(
        f"<item><title>{title}</title><link>https://invented.example/</link>"
        f"<guid isPermaLink='false'>{g}</guid></item>"
        for title, g in (("Long", guid), ("Other", guid + "2"), ("Short", "id-1"))
    )
    parsed = parse_feed(_rss(items), Source(name="x", url="x"), FETCHED_AT)
    keys = {e.title: e.canonical_url for e in parsed.events}
    assert len(set(keys.values())) == 3
    assert all(len(key.encode()) < 32_766 for key in keys.values())
    assert keys["Short"] == "https://invented.example/#item=id-1"  # as it always was


def test_a_reference_to_no_character_is_read_as_a_replacement_not_the_feeds_end() -> None:
    # feedparser raised OverflowError, ValueError or UnicodeEncodeError on each of these,
    # and the whole feed, good items too, was lost on every poll.
    references = ["&#99999999999999999999;", "&#xD800;", "&#x110000;", "&#0;"]
    items = "".join(
        f"<item><title>T{reference}</title><link>https://invented.example/{n}</link></item>"
        for n, reference in enumerate(references)
    )
    good = "<item><title>&#0000065;&#x42;</title><link>https://invented.example/g</link></item>"
    parsed = parse_feed(_rss(items + good), Source(name="x", url="x"), FETCHED_AT)
    assert [e.title for e in parsed.events] == ["T\ufffd"] * len(references) + ["AB"]


@pytest.mark.parametrize(
    "item",
    [
        "<title>Odd</title><link>https://invented.example/o</link>"
        "<description>Text</content:encoded>",
        "<title>Odd</title><link>https://invented.example/o</link><summary>Text</content>",
        "<title>Odd</title><link>https://invented.example/o</link><author>A</name>",
        "<title>Odd</title><link>https://invented.example/o</link><dc:creator>A</name>",
    ],
)
def test_a_field_closed_by_another_elements_end_is_left_empty_not_the_feeds_end(
    item: str,
) -> None:
    # feedparser gives such a field as None: parse_feed raised TypeError or
    # AttributeError, and the whole feed, good items too, was lost on every poll.
    good = "<item><title>Fine</title><link>https://invented.example/f</link></item>"
    content = _rss(f"{good}<item>{item}</item>").replace(
        b"<rss ", b'<rss xmlns:dc="http://purl.org/dc/elements/1.1/" '
    )
    parsed = parse_feed(content, Source(name="x", url="x"), FETCHED_AT)
    assert [(e.title, e.summary, e.authors) for e in parsed.events] == [
        ("Fine", "", []),
        ("Odd", "", []),
    ]


def test_a_bare_entry_that_loses_its_summary_to_another_elements_end_is_unusable() -> None:
    content = b"<entry><id>http://h</id><summary>x</content></entry>"  # a bare Atom entry
    parsed = parse_feed(content, Source(name="x", url="x"), FETCHED_AT)
    assert (parsed.events, parsed.unusable) == ([], 1)


@pytest.mark.parametrize(
    ("odd", "reason"),
    [
        ("<link>https://invented.example/o</link><title>Odd</content>", "no title"),
        ("<title>Odd</title><guid>x<author>A</guid>", "no usable link ('')"),
    ],
)
def test_an_item_that_loses_its_title_or_link_to_another_elements_end_is_skipped_alone(
    odd: str, reason: str
) -> None:
    content = _rss(
        f"<item>{odd}</item><item><title>Fine</title><link>https://invented.example/f</link></item>"
    )
    parsed = parse_feed(content, Source(name="x", url="x"), FETCHED_AT)
    assert [e.title for e in parsed.events] == ["Fine"]
    assert [(s.position, s.reason) for s in parsed.skipped] == [(0, reason)]


def test_a_wide_feed_with_a_reference_to_no_character_is_a_feed_error() -> None:
    # The worker re-encodes feeds as UTF-8 first; handed UTF-16 whole, it is this error.
    content = _rss("<item><title>T&#xD800;</title><link>https://invented.example/a</link></item>")
    wide = content.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    with pytest.raises(FeedError, match="not a readable RSS/Atom feed: UnicodeEncodeError"):
        parse_feed(wide, Source(name="x", url="x"), FETCHED_AT)


def test_far_future_and_pre_1991_dates_are_unknown_near_future_is_kept() -> None:
    content = _rss(
        "<item><title>Future</title><link>https://invented.example/f</link>"
        "<pubDate>Fri, 01 Jan 2100 00:00:00 GMT</pubDate></item>"
        "<item><title>Old</title><link>https://invented.example/o</link>"
        "<pubDate>Mon, 31 Dec 1990 23:59:59 GMT</pubDate></item>"
        "<item><title>Within a day</title><link>https://invented.example/n</link>"
        "<pubDate>Tue, 01 Sep 2026 23:00:00 GMT</pubDate></item>"
    )
    events = parse_feed(content, Source(name="x", url="x"), FETCHED_AT).events
    assert [e.published_at for e in events] == [
        None,
        None,
        datetime(2026, 9, 1, 23, 0, tzinfo=UTC),
    ]


def test_tracking_parameters_removed_from_canonical_but_kept_in_url() -> None:
    link = "https://invented.example/a?id=7&utm_source=rss&fbclid=x"
    content = _rss(f"<item><title>T</title><link>{link.replace('&', '&amp;')}</link></item>")
    (event,) = parse_feed(content, Source(name="x", url="x"), FETCHED_AT).events
    assert event.url == link
    assert event.canonical_url == "https://invented.example/a?id=7"
    assert event.idempotency_key == article_key(canonicalize_url(link))


def test_item_language_and_tags_merge_with_source() -> None:
    content = _rss(
        "<item><title>T</title><link>https://invented.example/a</link>"
        "<category>Economy</category><category> </category></item>",
        channel_extra="<language>ru-RU</language>",
    )
    source = Source(name="x", url="x", tags=("news",), countries=("KZ",), language="kk")
    (event,) = parse_feed(content, source, FETCHED_AT).events
    assert event.language == "ru"  # the feed's own language wins over the source default
    assert event.tags == ["Economy", "news"]
    assert event.countries == ["KZ"]


def test_text_title_mentioning_a_tag_is_kept() -> None:
    content = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
        b'<entry><title type="text">Why &lt;div&gt; soup matters</title>'
        b'<link href="https://invented.example/1"/><id>urn:1</id></entry></feed>'
    )
    (event,) = parse_feed(content, Source(name="x", url="x"), FETCHED_AT).events
    assert event.title == "Why <div> soup matters"


def test_shared_link_item_key_does_not_depend_on_other_items() -> None:
    def feed(*titles: str) -> bytes:
        return _rss(
            "".join(
                f"<item><title>{t}</title><link>https://invented.example/</link></item>"
                for t in titles
            )
        )

    source = Source(name="x", url="x")
    both = {
        e.title: e.idempotency_key
        for e in parse_feed(feed("Alpha", "Beta"), source, FETCHED_AT).events
    }
    (alpha_alone,) = parse_feed(feed("Alpha"), source, FETCHED_AT).events
    (gamma_alone,) = parse_feed(feed("Gamma"), source, FETCHED_AT).events
    # Two different articles seen alone must not share a key (the later would overwrite
    # the earlier in the index), and Alpha must keep the key it had in the first poll.
    assert alpha_alone.idempotency_key != gamma_alone.idempotency_key
    assert alpha_alone.idempotency_key == both["Alpha"]


@pytest.mark.parametrize(
    ("written", "hour"),
    [
        ("2026-08-26T10:00:00 EST", 15),  # RFC 822's names, as RFC 822 reads them
        ("2026-08-26T10:00:00 GMT", 10),
        ("2026-08-26 10:00:00 MSK", 5),  # any other: the source's own zone, as none is
        ("2026-08-26T10:00:00 ALMT", 5),
        ("Wed, 26 Aug 2026 10:00:00 ALMT", 5),  # as the same date in RFC 822 always was
        ("2026-08-26T10:00:00+05:00", 5),
        ("Wed, 26 Aug 2026 10:00:00 +03:00", 7),  # RFC 822 with ISO's colon (review)
        ("Wed, 26 Aug 2026 10:00:00 -00:00", 10),
        ("Wed, 26 Aug 2026 10:00:00 +0300", 7),
        ("Wed, 26 Aug 2026 10:00:00 +03:00 (MSK)", 7),
        ("Wed, 26 Aug 2026 10:00:00 +3:00", 7),
    ],
)
def test_a_zones_name_after_an_iso_date_is_not_read_as_utc(written: str, hour: int) -> None:
    # feedparser read them all as 10:00 UTC: an Almaty source's ALMT five hours ahead,
    # newest-first above the articles published after it.
    content = _rss(
        "<item><title>Named</title><link>https://invented.example/n</link>"
        f"<pubDate>{written}</pubDate></item>"
    )
    source = Source(name="x", url="x", timezone="Asia/Almaty")
    [event] = parse_feed(content, source, FETCHED_AT).events
    assert event.published_at == datetime(2026, 8, 26, hour, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "date",
    [
        "0001-01-01T00:00:00",  # year 1 in the source's zone (Asia/Almaty, UTC+5): before year 1
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",  # after year 9999 in UTC
        "Fri, 31 Dec 9999 23:59:59 -1200",
        "99999-01-01T00:00:00Z",
    ],
)
def test_dates_outside_what_a_datetime_holds_are_unknown_not_an_error(date: str) -> None:
    content = _rss(
        "<item><title>Placeholder date</title><link>https://invented.example/p</link>"
        f"<pubDate>{date}</pubDate></item>"
        "<item><title>Fine</title><link>https://invented.example/f</link></item>"
    )
    source = Source(name="x", url="x", timezone="Asia/Almaty")
    events = parse_feed(content, source, FETCHED_AT).events
    assert [(e.title, e.published_at) for e in events] == [
        ("Placeholder date", None),
        ("Fine", None),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"/etc/hostname",
        b"/dev/zero",  # read as a path, it would never end
        str(REALDATA / "feed-heise-developer.atom").encode(),  # a feed, if it were read
    ],
)
def test_a_body_that_looks_like_a_path_is_read_as_a_body_not_opened(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[object] = []

    def refuse(path: object, *_: object, **__: object) -> None:
        opened.append(path)
        raise AssertionError(f"feedparser opened {path!r}")

    # Shadows the built-in open() inside feedparser only.
    monkeypatch.setattr(feedparser.api, "open", refuse, raising=False)
    with pytest.raises(FeedError, match="not a readable RSS/Atom feed"):
        parse_feed(body, Source(name="x", url="x"), FETCHED_AT)
    assert opened == []


def test_a_feed_of_many_items_hands_back_what_the_poll_has_room_for() -> None:
    # All 80,000 items of a feed came back to the service's event loop as events
    # (5.6 s and 240 MB) when its poll looked at one.
    items = (
        "<item><title>Again</title><link>https://invented.example/a</link></item>" * 3
        + "<item><title>No link</title></item>" * 30
        + "".join(
            f"<item><title>T{n}</title><link>https://invented.example/{n}</link></item>"
            for n in range(5000)
        )
    )
    parsed = parse_feed(_rss(items), Source(name="x", url="x"), FETCHED_AT, room=10)
    assert [e.title for e in parsed.events] == ["Again"] + [f"T{n}" for n in range(9)]
    assert (parsed.repeats, parsed.unusable, len(parsed.skipped)) == (2, 30, SKIPPED_KEPT)
    assert parsed.beyond == 5000 - 9  # each article counted once, as the poll reports
    whole = parse_feed(_rss(items), Source(name="x", url="x"), FETCHED_AT)
    assert (len(whole.events), whole.repeats, whole.beyond) == (5001, 2, 0)
