"""URLs in article events are URIs (RFC 3986) that java.net.URI and Go's net/url read,
and the articles keep the keys they had when feeds' links went out as written."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.indexer.decode import decode_entry
from services.indexer.documents import BulkAction, stored_source
from services.ingest.articles import Lead, lead_event
from services.ingest.feeds import parse_feed
from services.ingest.sources import Source
from services.ingest.urls import canonicalize_url, is_web_url
from services.ingest.worker import ArticleStream, Ingestor
from shared.consumer import Entry
from shared.events import ArticleEvent, SavedSearchMatch, article_key, source_key, web_url
from shared.fetcher import Fetched, Validators
from shared.index import IndexNames
from shared.settings import CommonSettings
from shared.streams import DATA_FIELD, Streams

HOSTILE_FEED = Path(__file__).resolve().parents[1] / "data" / "feed-hostile-links.rss"
FETCHED_AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

# The keys the code before URLs were escaped gave these links (article_key of
# canonicalize_url, computed once from it). They are the `_id`s of documents already
# indexed: changing one indexes that article a second time, the first never deleted.
PRE_CHANGE_KEYS = {
    "https://news.example.kz/2026/12/caravan crosses the steppe": (
        "dc683e888e2c07b05b7bf6ca3595f306"
    ),
    "https://news.example.kz/2026/12/\ncaravan-crosses": "f353efaa803e925e828d78b583d5b483",
    "https://news.example.kz/2026/12/\u202ecaravan\u202c-crosses": (
        "4fc62fc4e6be8257bea46c2cd09a8ee1"
    ),
    "https://news.example.kz/2026/12/\u2067caravan\u2069?a=1": "494f9d50e7176bb440b6dc251c7739aa",
    "https://новости.example.kz/статья/караван": "680bb0a0490531602d83c6f8257aeb8d",
    "https://news.example.ru/view.php?title=%C0%EB%EC%E0": "dd827b3aad5b2d5aa6d0c42547f8a70a",
    "http://[2001:DB8::1]:8080/news/caravan crosses": "57ddc068317ec4aa2d35c916c7aa5718",
    # Two links that escape alike, two articles before: two still.
    "https://news.example.kz/a%20b/c d": "84034d10d3efc191412fc99ba0e57003",
    "https://news.example.kz/a%20b/c%20d": "00b294bf6af197f0e7606eb8f60be3e1",
    "https://news.example.kz/ctl\x01\x7f\x85/x": "8651e5c933b86cf03594c1eaaae1c9d3",
    # Blanks before a query of tracking alone: the field stripped them before hashing.
    "https://a.kz/news/1 ?utm_source=x": "e5a0f10e755337360f3669500a3a2a70",
    "https://a.kz/news/2\u00a0?utm_source=x": "dfd0b71f5164a355ec63e38bc927199a",
    "https://a.kz/news/3\u3000?fbclid=1": "709c5e4783f1171f82e379e38c61ce3a",
}
# RFC 3986's characters, a `%` only as an escape's start.
URI = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")


def _is_uri(url: str) -> bool:
    return URI.fullmatch(url) is not None


def _hostile_events() -> list[ArticleEvent]:
    source = Source(name="news.example.kz", url="x", language="uz")
    return parse_feed(HOSTILE_FEED.read_bytes(), source, FETCHED_AT).events


def test_a_hostile_feed_publishes_uris_under_the_keys_its_articles_had() -> None:
    events = _hostile_events()

    assert len(events) == 7
    for event in events:
        assert _is_uri(event.url), event.url
        assert _is_uri(event.canonical_url), event.canonical_url
    keys = [event.idempotency_key for event in events]
    assert keys == list(PRE_CHANGE_KEYS.values())[:7]
    assert (
        events[0].canonical_url
        == "https://news.example.kz/2026/12/caravan%20crosses%20the%20steppe"
    )
    assert events[1].url == "https://news.example.kz/2026/12/caravan-crosses"
    assert events[2].url == "https://news.example.kz/2026/12/%E2%80%AEcaravan%E2%80%AC-crosses"
    assert events[6].canonical_url == "http://[2001:db8::1]:8080/news/caravan%20crosses"


@pytest.mark.parametrize(("link", "key"), PRE_CHANGE_KEYS.items())
def test_the_key_of_a_link_is_the_one_it_had(link: str, key: str) -> None:
    canonical = canonicalize_url(link)
    assert source_key(canonical) == key
    event = ArticleEvent.model_validate(
        {**_fields(), "url": web_url(link), "canonical_url": web_url(canonical)}
        | {"idempotency_key": source_key(canonical)}
    )
    assert event.idempotency_key == key
    assert _is_uri(event.canonical_url)


@given(st.text(min_size=1), st.text())
def test_every_url_published_is_an_rfc_3986_uri(host: str, rest: str) -> None:
    link = f"https://{host}/{rest}"
    if not is_web_url(link):
        return
    published = web_url(canonicalize_url(link))
    assert _is_uri(published)
    parts = urlsplit(published)
    assert parts.hostname
    # Brackets only around an IPv6 host, one `#`: java.net.URI refuses them elsewhere.
    assert not re.search(r"[\[\]#]", parts.path + parts.query + parts.fragment)
    assert web_url(published) == published


@pytest.mark.parametrize(
    "url",
    [
        "https://news.example.kz/caravan crosses",
        "https://news.example.kz/caravan\ncrosses",
        "https://news.example.kz/\u202ecaravan",
        "https://news.example.kz/\x85caravan",
        "https://news.example.kz/караван",
        "https://news.example.kz/100%",
        "https://news.example.kz/[1]",
        "https://news.example.kz/a#item=b#c",
    ],
)
def test_a_producer_cannot_publish_a_url_as_a_feed_wrote_it(url: str) -> None:
    for field in ("url", "canonical_url", "image_url"):
        with pytest.raises(ValidationError, match="RFC 3986"):
            ArticleEvent.model_validate({**_fields(), field: url})
    with pytest.raises(ValidationError, match="RFC 3986"):
        SavedSearchMatch.model_validate({**_match_fields(), "url": url})


def test_an_event_published_before_with_a_raw_url_is_read_escaped_under_its_key() -> None:
    link = "https://news.example.kz/2026/12/\u202ecaravan\u202c-crosses"
    old = {
        **_fields(),
        "url": link,
        "canonical_url": link,
        "image_url": "https://news.example.kz/i/караван 1.jpg",
        "idempotency_key": PRE_CHANGE_KEYS[link],
    }

    event = ArticleEvent.model_validate_json(json.dumps(old))

    assert event.idempotency_key == PRE_CHANGE_KEYS[link]
    assert event.canonical_url == web_url(link)
    assert event.image_url == (
        "https://news.example.kz/i/%D0%BA%D0%B0%D1%80%D0%B0%D0%B2%D0%B0%D0%BD%201.jpg"
    )
    # Every event published carries its key; one written by hand without it is keyed
    # by its URL as published.
    del old["idempotency_key"]
    assert ArticleEvent.model_validate_json(json.dumps(old)).idempotency_key == article_key(
        web_url(link)
    )


def test_the_indexer_indexes_an_older_raw_event_under_its_key_not_as_a_dead_letter() -> None:
    link = "http://[2001:DB8::1]:8080/news/caravan crosses"
    canonical = canonicalize_url(link)
    old = {**_fields(), "url": link, "canonical_url": canonical}
    old["idempotency_key"] = PRE_CHANGE_KEYS[link]
    streams = Streams(CommonSettings(stream_prefix="t:"))
    entry = Entry(
        stream=streams.articles,
        entry_id="1700000000000-0",
        fields={DATA_FIELD: json.dumps(old).encode()},
    )

    action = decode_entry(entry, streams, IndexNames("t-"))

    assert isinstance(action, BulkAction)
    assert action.doc_id == PRE_CHANGE_KEYS[link]
    document = json.loads(action.document)
    assert document["idempotency_key"] == PRE_CHANGE_KEYS[link]
    assert document["canonical_url"] == "http://[2001:db8::1]:8080/news/caravan%20crosses"


def test_a_republished_event_keeps_its_key() -> None:
    for event in _hostile_events():
        again = ArticleEvent.model_validate_json(event.model_dump_json())
        assert (again.idempotency_key, again.canonical_url) == (
            event.idempotency_key,
            event.canonical_url,
        )
        assert ArticleEvent.model_validate(event).idempotency_key == event.idempotency_key


def _fields() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": "744c3408-45a9-46a8-8b45-1e63e94b126c",
        "occurred_at": FETCHED_AT.isoformat(),
        "source": "news.example.kz",
        "url": "https://news.example.kz/a",
        "canonical_url": "https://news.example.kz/a",
        "title": "Karavan",
        "fetched_at": FETCHED_AT.isoformat(),
        "content_hash": "0" * 64,
    }


def _match_fields() -> dict[str, Any]:
    return {
        "saved_search_id": "s",
        "article_id": "a" * 32,
        "url": "https://news.example.kz/a",
        "title": "Karavan",
        "source": "news.example.kz",
        "fetched_at": FETCHED_AT.isoformat(),
        "content_hash": "0" * 64,
    }


def test_a_reindexed_document_with_a_raw_url_is_copied_escaped_under_its_key() -> None:
    link = "https://news.example.kz/2026/12/caravan crosses the steppe"
    old = {**_fields(), "url": link, "canonical_url": link}
    old["idempotency_key"] = PRE_CHANGE_KEYS[link]

    copied = json.loads(stored_source(old, alias_is_articles=True))

    assert copied["canonical_url"] == web_url(link)
    assert copied["idempotency_key"] == PRE_CHANGE_KEYS[link]
    assert "title_suggest" in copied


class _Web:
    """The hostile feed, and for each of its links the same real article page, at the
    address an HTTP client requests: the link escaped."""

    async def fetch(self, url: str, validators: Validators | None = None) -> Fetched:
        if url == FEED_URL:
            return Fetched(url, HOSTILE_FEED.read_bytes(), "application/rss+xml")
        return Fetched(web_url(url), ARTICLE_PAGE.read_bytes(), "text/html; charset=utf-8")


class _State:
    def __init__(self) -> None:
        self.published: list[tuple[str, ArticleEvent]] = []

    def under(self, _: Any) -> _State:
        return self

    async def validators(self, *_: Any) -> Validators:
        return Validators()

    async def remember_validators(self, *_: Any) -> None:
        return None

    async def record(self, _: str) -> None:
        return None

    async def publish(self, entry: Any, key: str, *_: Any) -> None:
        data = next(part for part in entry if isinstance(part, bytes) and part.startswith(b"{"))
        self.published.append((key, ArticleEvent.model_validate_json(data)))


class _Sandbox:
    async def run(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


FEED_URL = "https://news.example.kz/feed.xml"
ARTICLE_PAGE = Path(__file__).resolve().parents[2] / "samples" / "realdata" / "article-lsm-lv.html"


async def test_an_article_read_from_its_page_keeps_the_key_its_link_had() -> None:
    state = _State()
    ingestor = Ingestor(ArticleStream("caravan:articles"), _Web(), state, _Sandbox())  # type: ignore[arg-type]

    await ingestor.poll(Source(name="news.example.kz", url=FEED_URL))

    from_pages = [(key, event) for key, event in state.published if event.extraction == "page"]
    assert len(from_pages) == 7
    for key, event in from_pages:
        assert key == event.idempotency_key
        assert _is_uri(event.url)
        assert _is_uri(event.canonical_url)
    assert sorted(key for key, _ in from_pages) == sorted(list(PRE_CHANGE_KEYS.values())[:7])


@pytest.mark.parametrize(
    "link", [link for link in PRE_CHANGE_KEYS if link.startswith("https://a.kz")]
)
def test_an_article_read_from_its_lead_keeps_its_key(link: str) -> None:
    source = Source(name="a.kz", url="x", language="kk")
    event = lead_event(Lead(url=link, title="Караван"), source, FETCHED_AT)
    assert event.idempotency_key == PRE_CHANGE_KEYS[link]
    assert _is_uri(event.canonical_url)
