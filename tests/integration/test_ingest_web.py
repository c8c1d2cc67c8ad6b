"""ingest against a real HTTP server on loopback serving the real sample files.

Each test gets a fresh server and its own Redis namespace; every ingest_once
call builds a new fetcher and Redis client, like a restarted process, so what
carries over between calls is only what ingest keeps in Redis.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.ingest.app import ingest_once
from services.ingest.feeds import FeedError
from shared.fetch import FetchError
from shared.fetcher import Refused
from shared.settings import FetchSettings, Settings
from shared.streams import DATA_FIELD
from tests.conftest import REALDATA, Namespace
from tests.integration.conftest import published_articles
from tests.loopback import LoopbackServer, Reply, endless, sequence, static
from tests.waiting import until

pytestmark = pytest.mark.integration

RSS = "application/rss+xml"
HTML = "text/html; charset=utf-8"
LSM_PAGE = (REALDATA / "article-lsm-lv.html").read_bytes()
HERALD_PAGE = (REALDATA / "article-heraldsun.html").read_bytes()
ANDIJON = (REALDATA / "feed-andijonfk-uz.xml").read_text(encoding="utf-8")
MEDUZA = (REALDATA / "feed-meduza-scraped.xml").read_text(encoding="utf-8")


def _serve_andijon(web: LoopbackServer) -> None:
    """The linking feed (ETag "v1") and the two real article pages it points at."""
    web.routes["/feed.xml"] = static(_andijon_linking(web), RSS, etag='"v1"')
    web.routes["/news/lsm?utm_source=rss"] = static(LSM_PAGE, HTML)
    web.routes["/news/herald"] = static(HERALD_PAGE, HTML)


def _andijon_linking(web: LoopbackServer, *, title_suffix: str = "") -> bytes:
    """The real Andijon feed, its two items pointing at two real article pages on `web`."""
    text = ANDIJON.replace(
        "https://andijonfk.uz/sayt/damir-temirov-haqli-galabaga-erishdik-2",
        web.url("/news/lsm?utm_source=rss"),
    )
    text = text.replace(
        "https://andijonfk.uz/sayt/bugun-bobur-arenada-andijon-horazm", web.url("/news/herald")
    )
    return text.replace(
        "Haqli g&#x27;alabaga erishdik</description>",
        f"Haqli g&#x27;alabaga erishdik{title_suffix}</description>",
    ).encode()


async def test_feed_items_become_full_articles_from_their_pages(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    _serve_andijon(web)

    result = await ingest_once(web_settings, web.url("/feed.xml"), name="andijon")

    events = {e.url: e for e in await published_articles(redis, namespace)}
    assert (result.kind, result.published, result.new) == ("feed", 2, 2)
    lsm = events[web.url("/news/lsm?utm_source=rss")]
    expected = (REALDATA / "article-lsm-lv.expected.txt").read_text(encoding="utf-8")
    assert lsm.extraction == "page"
    assert lsm.title == "Norvēģijā pēc zemes nogruvuma pieci bojāgājušie"
    assert expected.split("\n\n")[1] in lsm.body  # a whole paragraph, diacritics intact
    assert lsm.authors == ["Anna Ūdre"]
    assert lsm.site_name == "LSM"
    assert lsm.image_url == "https://static.lsm.lv/media/2021/01/large/1/ej08.jpg"
    # The feed's own date (2026-08-28 15:19:10 -0000) beats the page's.
    assert lsm.published_at is not None
    assert lsm.published_at.isoformat() == ("2026-08-28T15:19:10+00:00")
    herald = events[web.url("/news/herald")]
    assert herald.authors == ["Laurie Oakes"]
    assert "A HIGH-powered federal government team" in herald.body
    # The page's own language (<html lang="en-au">) beats the feed's (<language>uz).
    assert (herald.language, lsm.language) == ("en", "lv")
    # Robots.txt was read once for the host, before anything else.
    assert web.paths()[0] == "/robots.txt"
    assert web.paths().count("/robots.txt") == 1


async def test_a_restarted_ingest_neither_refetches_nor_republishes_what_it_has(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    _serve_andijon(web)
    await ingest_once(web_settings, web.url("/feed.xml"), name="andijon")
    first_hits = len(web.hits)

    again = await ingest_once(web_settings, web.url("/feed.xml"), name="andijon")

    assert again.not_modified
    assert again.published == 0
    # The second run asked for the feed conditionally and fetched nothing else.
    repeat = web.hits[first_hits:]
    assert [h.path for h in repeat if h.path != "/robots.txt"] == ["/feed.xml"]
    assert repeat[-1].headers["if-none-match"] == '"v1"'
    assert len(await published_articles(redis, namespace)) == 2


async def test_a_changed_article_is_published_again_as_a_newer_version_of_the_same_document(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    _serve_andijon(web)
    await ingest_once(web_settings, web.url("/feed.xml"), name="andijon")
    updated_before = _sample("caravan_ingest_items_total", source="andijon", outcome="updated")

    corrected = LSM_PAGE.replace("piekto bojāgājušo".encode(), "sesto bojāgājušo".encode())
    web.routes["/feed.xml"] = static(
        _andijon_linking(web, title_suffix=" (yangilandi)"), RSS, etag='"v2"'
    )
    web.routes["/news/lsm?utm_source=rss"] = static(corrected, HTML)
    result = await ingest_once(web_settings, web.url("/feed.xml"), name="andijon")

    assert (result.updated, result.unchanged, result.published) == (1, 1, 1)
    assert (
        _sample("caravan_ingest_items_total", source="andijon", outcome="updated")
        == updated_before + 1
    )
    events = await published_articles(redis, namespace)
    newer = events[-1]
    (older,) = [e for e in events[:-1] if e.idempotency_key == newer.idempotency_key]
    assert newer.url == web.url("/news/lsm?utm_source=rss")
    assert newer.version > older.version
    assert "sesto bojāgājušo" in newer.body
    assert "piekto bojāgājušo" in older.body


async def test_a_published_page_is_asked_for_again_with_the_validators_it_was_read_with(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    _serve_andijon(web)
    page = "/news/lsm?utm_source=rss"
    web.routes[page] = static(LSM_PAGE, HTML, etag='"p1"')
    await ingest_once(web_settings, web.url("/feed.xml"), name="andijon")

    # Its feed item changed, so the page is asked about again: it has not changed.
    web.routes["/feed.xml"] = static(
        _andijon_linking(web, title_suffix=" (yangilandi)"), RSS, etag='"v2"'
    )
    result = await ingest_once(web_settings, web.url("/feed.xml"), name="andijon")

    asked = [(h.headers.get("if-none-match")) for h in web.hits if h.path == page]
    assert asked == [None, '"p1"']  # remembered with the article it was published as
    assert (result.published, result.unchanged) == (0, 2)
    assert len(await published_articles(redis, namespace)) == 2


async def test_another_sources_link_to_a_feed_leaves_its_next_poll_unconditional(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    # Validators were kept by address alone: a hostile feed linking to this source's
    # feed, read as an article page, left the newest ETag for it, and the source's own
    # next poll was a 304 that hid every item added meanwhile.
    _serve_andijon(web)
    await ingest_once(web_settings, web.url("/feed.xml"), name="andijon")
    web.routes["/feed.xml"] = static(
        _andijon_linking(web, title_suffix=" (yangilandi)"), RSS, etag='"v2"'
    )
    link = f"<item><title>Read this feed</title><link>{web.url('/feed.xml')}</link></item>"
    web.routes["/hostile.xml"] = static(
        f"<rss><channel><title>h</title>{link}</channel></rss>".encode(), RSS
    )
    await ingest_once(web_settings, web.url("/hostile.xml"), name="hostile")

    result = await ingest_once(web_settings, web.url("/feed.xml"), name="andijon")

    asked = [h.headers.get("if-none-match") for h in web.hits if h.path == "/feed.xml"]
    assert asked == [None, None, '"v1"']  # the hostile source's read asked nothing
    assert (result.not_modified, result.unchanged) == (False, 2)  # its items read again


async def test_an_unreadable_page_never_replaces_an_article_already_published(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    # Another source linked to the same article (the same key once tracking parameters
    # are dropped) at an address that fails: its own title and summary were published
    # over the page's text as a newer version.
    _serve_andijon(web)
    await ingest_once(web_settings, web.url("/feed.xml"), name="andijon")
    forged = web.url("/news/lsm?utm_source=rss&utm_medium=gone")
    item = (
        f"<item><title>FORGED</title><link>{forged}</link><description>Lies.</description></item>"
    )
    web.routes["/hostile.xml"] = static(
        f"<rss><channel><title>h</title>{item}</channel></rss>".encode(), RSS
    )

    result = await ingest_once(web_settings, web.url("/hostile.xml"), name="hostile")

    assert (result.published, result.unchanged) == (0, 1)
    events = await published_articles(redis, namespace)
    assert len(events) == 2
    assert all(e.extraction == "page" and e.title != "FORGED" for e in events)


async def test_an_article_only_its_feed_describes_is_updated_from_the_feed(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    # Its page never readable (gone, or refused by robots.txt): the feed's own fields
    # are the article, and a corrected item is a newer version of it.
    def feed(summary: str) -> bytes:
        item = f"<item><title>Budget</title><link>{web.url('/gone')}</link>"
        return (
            f"<rss><channel><title>f</title>{item}<description>{summary}</description>"
            "</item></channel></rss>".encode()
        )

    web.routes["/feed.xml"] = static(feed("First word."), RSS)
    await ingest_once(web_settings, web.url("/feed.xml"), name="feedonly")
    web.routes["/feed.xml"] = static(feed("Corrected word."), RSS)

    result = await ingest_once(web_settings, web.url("/feed.xml"), name="feedonly")

    assert (result.updated, result.failed) == (1, 0)
    events = await published_articles(redis, namespace)
    assert [e.summary for e in events] == ["First word.", "Corrected word."]


async def test_another_sources_feed_never_replaces_an_article_it_did_not_publish(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    # An article only its feed describes (its page gone): another source linking to it,
    # with a tracking parameter (the same key), published its own title and words over
    # it as a newer version of the same document.
    def feed(title: str, link: str, summary: str) -> bytes:
        item = f"<item><title>{title}</title><link>{link}</link>"
        return (
            f"<rss><channel><title>f</title>{item}<description>{summary}</description>"
            "</item></channel></rss>".encode()
        )

    web.routes["/feed.xml"] = static(feed("Rate kept", web.url("/gone"), "At 14%."), RSS)
    await ingest_once(web_settings, web.url("/feed.xml"), name="bank")
    evil = feed("Currency worthless", web.url("/gone?utm_source=evil"), "Collapse.")
    web.routes["/evil.xml"] = static(evil, RSS)

    result = await ingest_once(web_settings, web.url("/evil.xml"), name="evil")

    assert (result.published, result.updated, result.unchanged) == (0, 0, 1)
    # Its own source may still correct it.
    web.routes["/feed.xml"] = static(feed("Rate kept", web.url("/gone"), "At 14.5%."), RSS)
    assert (await ingest_once(web_settings, web.url("/feed.xml"), name="bank")).updated == 1
    events = await published_articles(redis, namespace)
    assert [(e.source, e.summary) for e in events] == [("bank", "At 14%."), ("bank", "At 14.5%.")]


@pytest.mark.parametrize(
    "validators",
    [
        {"ETag": '"v\xff"', "Last-Modified": "Dim, 06 d\xe9c 2026 10:00:00 GMT"},
        {"ETag": '"' + "v" * 60_000 + '"', "Last-Modified": "x" * 30_000},
    ],
    ids=["not-ascii", "huge"],
)
async def test_validators_that_cannot_be_sent_back_are_not_kept(
    web: LoopbackServer, web_settings: Settings, validators: dict[str, str]
) -> None:
    # Not ASCII: httpx refused to send them back, and the source failed every poll for
    # the 30 days they were kept, the server never asked again. Huge: 99 KB of Redis
    # an article.
    _serve_andijon(web)
    page = "/news/lsm?utm_source=rss"
    feed = _andijon_linking(web)
    web.routes["/feed.xml"] = lambda _: Reply(200, feed, {"Content-Type": RSS, **validators})
    web.routes[page] = lambda _: Reply(200, LSM_PAGE, {"Content-Type": HTML, **validators})
    first = await ingest_once(web_settings, web.url("/feed.xml"), name="andijon")
    assert first.published == 2

    # The feed item changes, so its page is asked for again too.
    web.routes["/feed.xml"] = lambda _: Reply(
        200, _andijon_linking(web, title_suffix=" (yangilandi)"), {"Content-Type": RSS}
    )
    again = await ingest_once(web_settings, web.url("/feed.xml"), name="andijon")
    assert (again.failed, again.unchanged) == (0, 2)
    asked = [h for h in web.hits if h.path in ("/feed.xml", page)]
    assert len(asked) == 4  # each asked again, unconditionally
    assert not any("if-none-match" in h.headers or "if-modified-since" in h.headers for h in asked)


async def test_a_feed_in_windows_1251_comes_out_as_unicode(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    # The real feed re-encoded, its declaration gone and the header silent: only the bytes tell.
    body = re.sub(r"<\?xml[^>]*\?>", "", MEDUZA).encode("windows-1251", errors="replace")
    web.routes["/meduza.xml"] = static(body, "application/xml")

    result = await ingest_once(web_settings, web.url("/meduza.xml"), name="meduza")

    titles = {e.title for e in await published_articles(redis, namespace)}
    assert result.published == 24
    first_title = re.findall(r"<title>([^<]+)</title>", MEDUZA)[1]
    assert first_title in titles
    assert all(re.search("[а-яё]", t, re.IGNORECASE) for t in titles)


@pytest.mark.parametrize("encoding", ["koi8-r", "windows-1251"])
async def test_an_article_page_in_a_cyrillic_code_page_without_any_declaration(
    web: LoopbackServer, redis: Redis, namespace: Namespace, encoding: str, web_settings: Settings
) -> None:
    sentences = re.findall(r"<description>([^<]+)</description>", MEDUZA)[1:]
    page = (
        "<html><head><title>"
        + sentences[0]
        + "</title></head><body><article><h1>"
        + sentences[0]
        + "</h1>"
        + "".join(f"<p>{s}.</p>" for s in sentences)
        + "</article></body></html>"
    )
    web.routes["/page"] = static(page.encode(encoding, errors="replace"), "text/html")

    result = await ingest_once(web_settings, web.url("/page"), name=encoding, kind="article")

    (event,) = await published_articles(redis, namespace)
    assert result.published == 1
    assert event.extraction == "page"
    # KOI8-R has no «» or dashes; the sentences both can carry come through whole.
    representable = [s for s in sentences if s == s.encode("koi8-r", "replace").decode("koi8-r")]
    assert len(representable) >= 5
    assert all(s in event.body for s in representable[1:])
    assert not re.search("[À-ÿ]", event.body)  # no mojibake


async def test_malformed_feed_over_http_skips_its_broken_item(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    body = (REALDATA / "feed-nenoksa-turbo-malformed.xml").read_bytes()
    web.routes["/nenoksa.xml"] = static(body, RSS)

    result = await ingest_once(web_settings, web.url("/nenoksa.xml"), name="nenoksa")

    assert (result.published, result.left_out) == (0, {"unusable": 1})
    assert await redis.xlen(namespace.streams.articles) == 0


async def test_a_page_without_an_article_is_a_clear_failure_not_an_event(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    web.routes["/empty"] = static(
        b"<html><body><nav><a href='/'>Home</a></nav></body></html>", HTML
    )

    result = await ingest_once(web_settings, web.url("/empty"), name="empty", kind="article")

    assert (result.published, result.failed) == (0, 1)
    assert await redis.xlen(namespace.streams.articles) == 0


async def test_robots_txt_disallow_is_honoured(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    web.routes["/private/feed.xml"] = static(_andijon_linking(web), RSS)

    with pytest.raises(Refused, match=r"disallowed by robots\.txt"):
        await ingest_once(web_settings, web.url("/private/feed.xml"))
    assert "/private/feed.xml" not in web.paths()


async def test_429_with_retry_after_is_waited_out_then_fetched(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    web.routes["/busy.xml"] = sequence(
        Reply(429, b"slow down", {"Retry-After": "1"}),
        Reply(
            200,
            (REALDATA / "feed-heise-developer.atom").read_bytes(),
            {"Content-Type": "application/atom+xml"},
        ),
    )

    result = await ingest_once(web_settings, web.url("/busy.xml"), name="heise")

    tries = [hit for hit in web.hits if hit.path == "/busy.xml"]
    assert len(tries) == 2
    assert tries[1].at - tries[0].at >= 1.0  # no sooner than the server asked
    assert result.published == 15


async def test_a_retry_after_longer_than_the_cap_gives_up_until_the_next_poll(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    web.routes["/busy.xml"] = sequence(Reply(503, b"", {"Retry-After": "3600"}))

    with pytest.raises(FetchError, match="HTTP 503, retry after 3600s"):
        await ingest_once(web_settings, web.url("/busy.xml"))
    assert web.paths().count("/busy.xml") == 1


async def test_a_50_mb_response_is_cut_off_at_the_limit(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    web.routes["/huge.xml"] = lambda _: Reply(200, endless(), {"Content-Type": RSS})

    with pytest.raises(FetchError, match="over the 10485760-byte limit"):
        await ingest_once(web_settings, web.url("/huge.xml"))


async def test_a_redirect_loop_is_detected(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    web.routes["/loop/a"] = lambda _: Reply(302, b"", {"Location": "/loop/b"})
    web.routes["/loop/b"] = lambda _: Reply(301, b"", {"Location": web.url("/loop/a")})

    with pytest.raises(FetchError, match="redirect loop"):
        await ingest_once(web_settings, web.url("/loop/a"))
    assert web.paths().count("/loop/a") == 1


async def test_a_redirect_to_no_url_is_a_fetch_error(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    # A ValueError before ("Invalid IPv6 URL"): it failed whatever poll it happened in,
    # a listing's or a sitemap index's with every page read before it.
    web.routes["/nowhere"] = lambda _: Reply(302, b"", {"Location": "http://[v1.x"})
    web.routes["/no-port"] = lambda _: Reply(302, b"", {"Location": "http://a.example:99999/"})

    with pytest.raises(FetchError, match=r"redirect to an unusable URL 'http://\[v1\.x'"):
        await ingest_once(web_settings, web.url("/nowhere"))
    with pytest.raises(FetchError, match=r"redirect to an unusable URL .*Port out of range"):
        await ingest_once(web_settings, web.url("/no-port"))


async def test_urls_past_8_kb_are_not_followed(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    # Every check of a URL (robots.txt's wildcards above all) costs its length.
    far = "/far?" + "a" * 10_000
    web.routes["/far-away"] = lambda _: Reply(302, b"", {"Location": far})
    # Relative, under the bound; joined to the page's own long address, past it.
    near = "?" + "b" * 4_000
    web.routes["/" + "c" * 4_500] = lambda _: Reply(302, b"", {"Location": near})

    with pytest.raises(FetchError, match="redirect to a URL of 10005 characters"):
        await ingest_once(web_settings, web.url("/far-away"))
    joined = len(web.url("/" + "c" * 4_500)) + len(near)
    with pytest.raises(FetchError, match=f"redirect to a URL of {joined} characters"):
        await ingest_once(web_settings, web.url("/" + "c" * 4_500))
    with pytest.raises(FetchError, match=f"a URL of {len(web.url(far))} characters"):
        await ingest_once(web_settings, web.url(far))
    fetched = [path for path in web.paths() if path != "/robots.txt"]
    assert fetched == ["/far-away", "/" + "c" * 4_500]  # never a target past the bound


async def test_internal_addresses_are_refused_unless_allowed(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    web.routes["/feed.xml"] = static(_andijon_linking(web), RSS)
    web.routes["/to-metadata"] = lambda _: Reply(
        302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"}
    )

    with pytest.raises(Refused, match=r"169\.254\.169\.254 is an internal address"):
        await ingest_once(web_settings, "http://169.254.169.254/latest/meta-data/")
    # Allowed on the first hop, refused after the redirect.
    with pytest.raises(Refused, match=r"169\.254\.169\.254 is an internal address"):
        await ingest_once(web_settings, web.url("/to-metadata"))

    web_settings = replace(web_settings, fetch=FetchSettings(allow=""))
    hits = len(web.hits)
    with pytest.raises(Refused, match=r"localhost resolves to (127\.0\.0\.1|::1)"):
        await ingest_once(web_settings, f"http://localhost:{web.port}/feed.xml")
    assert len(web.hits) == hits  # refused before connecting
    assert await redis.xlen(namespace.streams.articles) == 0


async def test_something_that_is_no_feed_over_http_is_a_feed_error(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    body = (REALDATA / "cbr-xml-daily-2023-09-27.xml").read_bytes()
    web.routes["/rates.xml"] = static(body, "application/xml")

    with pytest.raises(FeedError, match="not a readable RSS/Atom feed"):
        await ingest_once(web_settings, web.url("/rates.xml"))


@pytest.mark.faults
async def test_a_feed_whose_body_is_a_local_path_is_not_read_from_disk(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    # Read as a path, this body would bring the 15 items of a local feed.
    local_feed = REALDATA / "feed-heise-developer.atom"
    web.routes["/feed.xml"] = static(str(local_feed).encode(), RSS)

    with pytest.raises(FeedError, match="not a readable RSS/Atom feed"):
        await ingest_once(web_settings, web.url("/feed.xml"), name="path")
    assert await redis.xlen(namespace.streams.articles) == 0


async def test_ingest_pauses_while_the_consumers_are_too_far_behind(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    stream = namespace.streams.articles
    for number in range(31):
        await redis.xadd(stream, {DATA_FIELD: f'{{"backlog": {number}}}'.encode()})
    await redis.xgroup_create(stream, "slow-indexer", id="0")
    # A group no consumer has spoken for yet counts only when configured (shared/groups.py).
    web_settings = replace(
        web_settings,
        common=web_settings.common.model_copy(update={"stream_groups": ["slow-indexer"]}),
        # One article at a time, so that the lag last measured is known exactly.
        ingest=web_settings.ingest.model_copy(update={"max_lag": 30, "articles_in_flight": 1}),
    )
    web.routes["/meduza.xml"] = static(MEDUZA.encode(), RSS)  # 24 items
    waits_before = _sample("caravan_ingest_backpressure_waits_total")

    task = asyncio.create_task(ingest_once(web_settings, web.url("/meduza.xml"), name="meduza"))

    async def paused() -> bool:
        return _sample("caravan_ingest_backpressure_waits_total") > waits_before

    await until(paused, "ingest to pause")
    assert await redis.xlen(stream) == 31  # paused before publishing anything
    assert not task.done()

    await redis.xreadgroup("slow-indexer", "c1", {stream: ">"})  # the consumer catches up
    result = await asyncio.wait_for(task, timeout=60)
    assert result.published == 24
    # Read again once the articles since the catch-up (lag 0) took half the room: after
    # 1 + 15 of them, when the lag was 16 (and the last 7 took half of what was left).
    assert _sample("caravan_ingest_articles_lag") == 16


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_feed_items_without_link_or_date(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    feed = _andijon_linking(web).decode()
    # A permalink guid stands in for a missing link: drop both.
    feed = re.sub(r"<link>[^<]*news/lsm[^<]*</link>\s*<guid[^>]*>[^<]*</guid>", "", feed)
    feed = re.sub(r"<pubDate>Tue[^<]*</pubDate>", "", feed)
    web.routes["/feed.xml"] = static(feed.encode(), RSS)
    web.routes["/news/herald"] = static(HERALD_PAGE, HTML)

    result = await ingest_once(web_settings, web.url("/feed.xml"), name="andijon")

    (event,) = await published_articles(redis, namespace)
    assert (result.published, result.left_out) == (1, {"unusable": 1})  # the linkless item
    assert event.published_at is not None  # none in the feed: the page's own, in UTC
    assert event.published_at.isoformat() == "2015-03-13T00:00:00+00:00"
    assert event.extraction == "page"


async def test_a_server_dripping_its_answer_is_cut_off_by_the_deadline(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    web_settings = replace(
        web_settings, ingest=web_settings.ingest.model_copy(update={"timeout": 0.3, "retries": 1})
    )

    def drip() -> Iterator[bytes]:
        for _ in range(100):
            time.sleep(0.1)  # each read is within the timeout, the whole never is
            yield b"<rss>"

    web.routes["/slow.xml"] = lambda _: Reply(200, drip(), {"Content-Type": RSS})

    with pytest.raises(FetchError, match=r"not complete within 0\.9s"):
        await ingest_once(web_settings, web.url("/slow.xml"))
    assert web.paths().count("/slow.xml") == 2  # retried once


async def test_an_invalid_url_is_a_clear_error(
    web: LoopbackServer, redis: Redis, namespace: Namespace, web_settings: Settings
) -> None:
    with pytest.raises(FetchError, match="not a valid URL"):
        await ingest_once(web_settings, "http://[::1/feed.xml")
