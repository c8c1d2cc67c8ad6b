"""The JSON API routes; the work is in Backend and the pure modules."""

# No `from __future__ import annotations`: FastAPI reads these signatures at run time,
# and their Depends/Query markers refer to values local to the router factories.

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, StringConstraints

from services.query.articles import ARTICLE_ID, Article, Similar, Suggestions
from services.query.backend import Backend
from services.query.cursors import SortMode, decode_cursor
from services.query.limits import TrustedProxies
from services.query.live import LiveStream, QuoteBroadcaster
from services.query.middleware import client_of
from services.query.quotes import LatestQuotes
from services.query.search import SearchPage, SearchRequest
from shared.saved_searches import MAX_VALUE_CHARS

MAX_SUGGESTIONS = 10
MAX_SIMILAR = 20
# The search's limits, read by its declaration here and by its short path (lean.py).
MAX_QUERY_LENGTH = 500
# The longest cursor the service writes: the last hit's canonical URL is in it, and the
# index keeps one of up to 32,766 bytes (a keyword's most), in base64. At 2,000, an
# article with a URL of 250 Cyrillic letters stopped paging there, and its feed's next link.
MAX_CURSOR_LENGTH = 44_000
MAX_TERMS = 20
# The parameters that take many values (each a filter); the others take one.
FILTERS = ("source", "country", "tag", "language")
# Each filter value as long as a saved search takes it: 20 values of 3 KB made a page of
# 1.2 MB, each repeated in every facet link.
Term = Annotated[str, StringConstraints(max_length=MAX_VALUE_CHARS)]
Terms = Annotated[list[Term], Query(max_length=MAX_TERMS)]


@dataclass(frozen=True)
class SearchParams:
    """The search parameters as given; `request()` checks them together."""

    q: str
    page: int
    size: int
    source: tuple[str, ...]
    country: tuple[str, ...]
    tag: tuple[str, ...]
    language: tuple[str, ...]
    date_from: date | None
    date_to: date | None
    sort: SortMode
    cursor: str | None

    def request(self) -> SearchRequest:
        """Raises InvalidSearch, InvalidCursor or PageOutOfRange (ValueErrors: 400s)."""
        cursor = decode_cursor(self.cursor) if self.cursor else None
        return SearchRequest(
            q=self.q,
            page=self.page,
            size=self.size,
            sources=self.source,
            countries=self.country,
            tags=self.tag,
            languages=self.language,
            date_from=self.date_from,
            date_to=self.date_to,
            sort=self.sort,
            cursor=cursor,
        )


def search_params_dependency(max_page_size: int) -> Callable[..., Awaitable[SearchParams]]:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a hop per request.
    async def search_params(
        q: Annotated[
            str,
            Query(
                max_length=MAX_QUERY_LENGTH,
                description=(
                    'simple_query_string: words (all must match), "a phrase", -excluded, a OR b'
                ),
            ),
        ] = "",
        page: Annotated[
            int,
            Query(
                ge=1,
                description="pages of `size` inside the first 10,000 hits; past that use `cursor`",
            ),
        ] = 1,
        size: Annotated[int, Query(ge=1, le=max_page_size)] = 10,
        source: Terms = [],  # noqa: B006 — FastAPI copies defaults per request
        country: Terms = [],  # noqa: B006
        tag: Terms = [],  # noqa: B006
        language: Terms = [],  # noqa: B006
        date_from: Annotated[date | None, Query(description="published on or after")] = None,
        date_to: Annotated[date | None, Query(description="published on or before")] = None,
        sort: Annotated[
            SortMode,
            Query(description="`relevance` needs `q`; without it results are newest first"),
        ] = "relevance",
        cursor: Annotated[
            str | None,
            Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the page before"),
        ] = None,
    ) -> SearchParams:
        return SearchParams(
            q,
            page,
            size,
            tuple(source),
            tuple(country),
            tuple(tag),
            tuple(language),
            date_from,
            date_to,
            sort,
            cursor,
        )

    return search_params


def as_json(model: BaseModel) -> Response:
    # Pydantic writes the JSON in one step; returned as a model, FastAPI would validate it
    # against response_model again and walk it through jsonable_encoder (the documented
    # shape is the same: response_model stays on each route for OpenAPI).
    return Response(model.model_dump_json(), media_type="application/json")


def api_router(
    backend: Backend, broadcaster: QuoteBroadcaster, max_page_size: int, proxies: TrustedProxies
) -> APIRouter:
    router = APIRouter(prefix="/api")
    params_dependency = search_params_dependency(max_page_size)

    @router.get("/search", response_model=SearchPage)
    async def search(params: Annotated[SearchParams, Depends(params_dependency)]) -> Response:
        return as_json(await backend.search(params.request()))

    @router.get(
        "/articles/{article_id}",
        response_model=Article,
        responses={404: {"description": "no such article"}},
    )
    async def article(article_id: Annotated[str, Path(pattern=ARTICLE_ID)]) -> Response:
        return as_json(await backend.article(article_id))

    @router.get(
        "/articles/{article_id}/similar",
        response_model=Similar,
        responses={404: {"description": "no such article"}},
    )
    async def similar(
        article_id: Annotated[str, Path(pattern=ARTICLE_ID)],
        size: Annotated[int, Query(ge=1, le=MAX_SIMILAR)] = 5,
    ) -> Response:
        return as_json(await backend.similar(article_id, size))

    @router.get("/suggest", response_model=Suggestions)
    async def suggest(
        q: Annotated[str, Query(max_length=100, description="title prefix")] = "",
        size: Annotated[int, Query(ge=1, le=MAX_SUGGESTIONS)] = 5,
    ) -> Response:
        return as_json(await backend.suggest(q, size))

    @router.get("/quotes/latest", response_model=LatestQuotes)
    async def latest_quotes() -> LatestQuotes:
        return await backend.latest_quotes()

    # Left out of the OpenAPI document: an endless event stream is no request/response pair.
    @router.get("/quotes/stream", include_in_schema=False)
    async def quotes_stream(request: Request) -> Response:
        # Each open page holds a connection and a queue: past a cap, a 429 or 503 that
        # says so plainly (the page's script tries again later).
        return LiveStream(broadcaster, client_of(request.scope, proxies))

    return router
