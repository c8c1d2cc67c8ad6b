"""An answer of Elasticsearch the query service cannot read is the cluster's trouble.

A proxy's maintenance page sent with a 200, or a body of another shape, used to end
in a 500; it is a SerializationError now, which the app answers 503 like any other
trouble of the cluster (services/query/errors.py). A hit it cannot read, or whose URL
is no http(s) URL, is left out of the answer instead. Fakes stand in for the node: a
real one never answers so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, SerializationError, TextApiResponse
from elasticsearch import AsyncElasticsearch
from prometheus_client import REGISTRY

from services.query.backend import ArticleNotFound, Backend, answer_read
from services.query.following import Following
from services.query.rates import shape_currencies
from services.query.search import SearchRequest, readable_hits, readable_result
from tests.querynode import Node, article, query_over

PAGES: list[Any] = [
    "<html>Down for maintenance</html>",
    {"took": 3},
    {"hits": {"total": "lots", "hits": []}},
]


class Answering:
    """A node that answers every request with `body` and a 200."""

    def __init__(self, body: Any) -> None:
        self.body = body

    async def perform_request(self, *_: Any, **__: Any) -> SimpleNamespace:
        return SimpleNamespace(body=self.body)

    async def search(self, **_: Any) -> TextApiResponse:
        meta = ApiResponseMeta(200, "1.1", HttpHeaders(), 0.0, None)  # type: ignore[arg-type]
        return TextApiResponse(body=self.body, meta=meta)

    get = search


# A search's answer, and an article's (not "no such article": a 404 a crawler believes).
ASKED: list[tuple[str, Any]] = [
    *(("search", body) for body in PAGES),
    *(("article", body) for body in [*PAGES, {"_id": "a" * 32, "found": True}]),
]


@pytest.mark.parametrize(("asked", "body"), ASKED)
async def test_an_answer_that_is_not_what_was_asked_for_is_unreadable(
    asked: str, body: Any
) -> None:
    es = cast("AsyncElasticsearch", Answering(body))
    backend = Backend(es, "articles", "quotes", 1000, cache_seconds=0, rate_digits=6)
    ask: dict[str, Callable[[], Awaitable[object]]] = {
        "search": lambda: backend.search(SearchRequest(q="caravan")),
        "article": lambda: backend.article("a" * 32),
    }
    with pytest.raises(SerializationError, match="unreadable answer"):
        await ask[asked]()


async def test_the_latest_quotes_answered_with_a_page_are_unreadable_not_none() -> None:
    es = cast("AsyncElasticsearch", Answering("<html>Down for maintenance</html>"))
    backend = Backend(es, "articles", "quotes", 1000, cache_seconds=0, rate_digits=6)
    with pytest.raises(SerializationError, match="unreadable answer"):
        await backend.latest_quotes()


@pytest.mark.parametrize("aggregations", ["x", {"by_base": "x"}, {"by_base": {"buckets": [{}]}}])
def test_rates_answered_out_of_shape_are_unreadable(aggregations: Any) -> None:
    with pytest.raises(SerializationError), answer_read():
        shape_currencies({"aggregations": aggregations})


# A document indexed before the event contract refused other schemes (or by another
# tool): readable as the index contract has it, but its URL is no link to give.
NOT_HTTP = [
    "javascript:alert(1)",
    " JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "ftp://news.example/a",
]
KEPT, SPOILED = "a" * 32, "b" * 32
ENDPOINTS = ("search", "similar", "feed", "article")


def _left_out() -> dict[str, float]:
    return {
        name: REGISTRY.get_sample_value("caravan_query_unreadable_hits_total", {"endpoint": name})
        or 0.0
        for name in ENDPOINTS
    }


@pytest.mark.parametrize("url", NOT_HTTP)
async def test_a_hit_whose_url_is_no_http_url_is_left_out_and_counted(url: str) -> None:
    es = cast("AsyncElasticsearch", Node(article(KEPT), article(SPOILED, url=url)))
    backend = Backend(es, "articles", "quotes", 1000, cache_seconds=0, rate_digits=6)
    following = Following(es, "articles", "saved-searches", 1000, 10, "UTC")
    before = _left_out()
    # Words that find under three hits: a second, near-spelling try, and still one count.
    search = await backend.search(SearchRequest(q="caravan"))
    similar = await backend.similar(KEPT, 5)
    feed = await following.feed(SearchRequest(sort="newest"))
    with pytest.raises(ArticleNotFound):
        await backend.article(SPOILED)
    assert [hit.id for hit in search.results] == [KEPT]
    assert search.total == 2  # as Elasticsearch counted them
    assert [hit.id for hit in similar.results] == [KEPT]
    assert [entry.article_id for entry in feed.entries] == [KEPT]
    assert _left_out() == {name: before[name] + 1 for name in ENDPOINTS}


async def test_the_pages_neither_list_nor_show_an_article_whose_url_is_no_http_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spoiled = article(SPOILED, title="Spoiled", url="javascript:alert(document.cookie)")
    async with query_over(Node(article(KEPT), spoiled), monkeypatch) as client:
        api = await client.get("/api/search")  # the short path
        routed = await client.get("/api/search", params={"page": "01"})  # the route's
        page = await client.get("/")
        shown = await client.get(f"/articles/{SPOILED}")
        kept = await client.get(f"/articles/{KEPT}")
    assert [hit["id"] for hit in api.json()["results"]] == [KEPT]
    assert routed.json() == api.json()
    assert page.status_code == 200
    assert "Spoiled" not in page.text
    assert "javascript:" not in page.text
    assert shown.status_code == 404
    assert "javascript:" not in shown.text
    assert f'<a href="https://news.example/{KEPT}" rel="noopener">' in kept.text


def test_why_a_hit_was_left_out_names_its_field() -> None:
    # The reason logged was cut after 32 characters: "1 validation error for SearchHit".
    hits = [
        article(KEPT),
        article(SPOILED, url="javascript:alert(1)"),
        article("c" * 32, title=3, url=5),
        "no hit",
    ]
    kept, left_out = readable_hits(hits, readable_result)
    assert [hit["id"] for hit in kept] == [KEPT]
    assert left_out == [
        f"'{SPOILED}': ValidationError: at 'url': 'Value error, not an http(s) URL:...' (1 in all)",
        f"'{'c' * 32}': ValidationError: at '_source.title': 'Input should be a valid string' "
        "(2 in all)",
        "'None': ValidationError: at 'the hit': 'Input should be a valid dictiona...' (1 in all)",
    ]
