"""An answer of Elasticsearch the query service cannot read is the cluster's trouble.

A proxy's maintenance page sent with a 200, or a body of another shape, used to end
in a 500; it is a SerializationError now, which the app answers 503 like any other
trouble of the cluster (services/query/errors.py). Fakes stand in for the node: a
real one never answers so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, SerializationError, TextApiResponse
from elasticsearch import AsyncElasticsearch

from services.query.backend import Backend, answer_read
from services.query.rates import shape_currencies
from services.query.search import SearchRequest

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
