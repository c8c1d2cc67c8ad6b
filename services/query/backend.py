"""The query service's I/O edge: Elasticsearch requests built and shaped by the pure modules."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import structlog
from elastic_transport import SerializationError
from elasticsearch import AsyncElasticsearch, NotFoundError
from prometheus_client import Counter
from pydantic_core import to_json

from services.query.articles import (
    FOUND,
    Article,
    Similar,
    Suggestions,
    build_similar,
    build_suggest,
    shape_article,
    shape_similar,
    shape_suggest,
)
from services.query.limits import TtlCache, charged
from services.query.quotes import CANDIDATES, LatestQuotes, build_latest, shape_latest
from services.query.search import (
    SEARCH_FILTER_PATH,
    SearchPage,
    SearchRequest,
    build_search,
    readable_hits,
    shape_readable,
    wants_fuzzy,
)
from shared.index import DERIVED_FIELDS
from shared.searching import UTC_ZONE
from shared.text import one_line

log = structlog.get_logger(__name__)

SEARCH_PARAMS = {"ignore_unavailable": "true", "filter_path": ",".join(SEARCH_FILTER_PATH)}
# The query string the client would make of SEARCH_PARAMS, made once (its characters
# need no escaping, as the client's own quoting leaves them).
SEARCH_QUERY = "&".join(
    f"{name}={quote(value, safe=',*')}" for name, value in SEARCH_PARAMS.items()
)
JSON_HEADERS = {"accept": "application/json", "content-type": "application/json"}
# What the answers kept for CARAVAN_QUERY_CACHE_SECONDS weigh at most, as JSON (the
# process holds about four times as much of them as objects).
CACHE_MAX_BYTES = 8 * 1024 * 1024


class ArticleNotFound(LookupError):
    pass


class Backend:
    def __init__(
        self,
        es: AsyncElasticsearch,
        articles: str,
        quotes: str,
        exact_total_up_to: int,
        cache_seconds: float,
        rate_digits: int,
        time_zone: str = UTC_ZONE,
    ) -> None:
        self.es = es
        self.time_zone = time_zone
        self.rate_digits = rate_digits
        self.articles = articles
        self.quotes = quotes
        self.exact_total_up_to = exact_total_up_to
        self._cache: TtlCache[Any] = TtlCache(cache_seconds, max_weight=CACHE_MAX_BYTES)
        self._search_target = f"/{quote(articles, safe=',')}/_search?{SEARCH_QUERY}"

    async def unanalysed(self) -> int:
        """Articles indexed before the normalised fields existed: found only as typed."""
        response = await self.es.count(
            index=self.articles,
            ignore_unavailable=True,
            query={"bool": {"must_not": {"exists": {"field": "fold.title"}}}},
        )
        return int(response["count"])

    def _cached(self, key: tuple[Any, ...]) -> Any:
        return self._cache.get(key, time.monotonic())

    def _keep(self, key: tuple[Any, ...], value: Any) -> None:
        if self._cache.seconds > 0:  # weighed only to be kept
            self._cache.put(key, value, time.monotonic(), weight=len(to_json(value)))

    async def search(self, request: SearchRequest) -> SearchPage:
        key = ("search", request)
        if (page := self._cached(key)) is not None:
            return page  # type: ignore[no-any-return]
        page, left_out = await self._search(request, fuzzy=False)
        if wants_fuzzy(request, page):
            near, near_left_out = await self._search(request, fuzzy=True)
            if near.total > page.total:
                page, left_out = near.model_copy(update={"broadened": True}), near_left_out
            else:
                page = page.model_copy(update={"did_you_mean": near.did_you_mean})
        # Counted for the page answered, once, however many tries made it.
        hits_left_out("search", left_out)
        self._keep(key, page)
        return page

    async def _search(self, request: SearchRequest, *, fuzzy: bool) -> tuple[SearchPage, list[str]]:
        body = build_search(request, self.exact_total_up_to, fuzzy=fuzzy, time_zone=self.time_zone)
        # The body written by pydantic's core (the word forms make it long: a few times
        # faster than the client's json.dumps) and sent as these bytes; perform_request
        # because search() is typed for a dict body, with its query string made once.
        response = await charged(
            self.es.perform_request(
                "POST",
                self._search_target,
                headers=JSON_HEADERS,
                body=to_json(body),
                endpoint_id="search",
                path_parts={"index": self.articles},
            )
        )
        with answer_read():
            return shape_readable(response.body, request)

    async def article(self, doc_id: str) -> Article:
        try:
            document = await self.es.get(
                index=self.articles, id=doc_id, source_excludes=DERIVED_FIELDS
            )
        except NotFoundError as exc:
            raise ArticleNotFound(doc_id) from exc
        # A document another version or tool wrote, not as the index contract has it, is
        # not served, as the searches leave it out: a 404, not the cluster's 503. An
        # answer that is no document at all (a proxy's page) is still the cluster's.
        with answer_read():
            kept, left_out = readable_hits([FOUND.validate_python(dict(document))], shape_article)
        hits_left_out("article", left_out)
        if not kept:
            raise ArticleNotFound(doc_id)
        return kept[0]

    async def similar(self, doc_id: str, size: int) -> Similar:
        # The article must exist: more_like_this on a missing one is an empty list, not a 404.
        await self.article(doc_id)
        body = build_similar(self.articles, doc_id, size)
        response = await charged(self.es.search(index=self.articles, body=body))
        with answer_read():
            similar, left_out = shape_similar(doc_id, dict(response))
        hits_left_out("similar", left_out)
        return similar

    async def suggest(self, prefix: str, size: int) -> Suggestions:
        if not one_line(prefix):
            return Suggestions(q=prefix, suggestions=[])
        key = ("suggest", prefix, size)
        if (found := self._cached(key)) is not None:
            return found  # type: ignore[no-any-return]
        response = await charged(
            self.es.search(
                index=self.articles, body=build_suggest(prefix, size), ignore_unavailable=True
            )
        )
        with answer_read():
            found = shape_suggest(prefix, dict(response))
        self._keep(key, found)
        return found

    async def latest_quotes(self) -> LatestQuotes:
        response = await charged(
            self.es.search(
                index=self.quotes, body=build_latest(candidates=CANDIDATES), ignore_unavailable=True
            )
        )
        with answer_read():
            answer = dict(response)
            if "aggregations" not in answer:
                return LatestQuotes(quotes=[], ticker=[])
            return shape_latest(answer, self.rate_digits, today=datetime.now(UTC).date())


UNREADABLE_HITS = Counter(
    "caravan_query_unreadable_hits_total",
    "Hits left out of an answer for not reading as the index contract has them "
    "(written by another version or tool).",
    ["endpoint"],
)
# The first few of an answer are told; the metric counts them all.
HITS_LOGGED = 3


def hits_left_out(endpoint: str, left_out: list[str]) -> None:
    if not left_out:
        return
    UNREADABLE_HITS.labels(endpoint).inc(len(left_out))
    for detail in left_out[:HITS_LOGGED]:
        log.warning("hit left out: not as the index contract has it", detail=detail)


@contextmanager
def answer_read() -> Iterator[None]:
    """Where an answer of Elasticsearch is read: one that cannot be (a proxy's page sent
    with a 200, a body cut short or of another shape) is the cluster's trouble, answered
    503 as any other (errors.py), not a 500. pydantic's ValidationError is a ValueError."""
    try:
        yield
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        msg = f"unreadable answer: {type(exc).__name__}: {exc}"
        raise SerializationError(msg) from exc
