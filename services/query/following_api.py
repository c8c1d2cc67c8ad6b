"""Searches people can follow: Atom feeds of any search, and saved searches.

- `GET /api/search.atom`: the newest articles of a search (the parameters and checks of
  `/api/search`; always newest first) as an Atom 1.0 feed;
- `POST /api/saved-searches` (words and filters as JSON) → 201 with its id and feed;
  `GET` and `DELETE /api/saved-searches/{id}`; `GET /api/saved-searches/{id}.atom`.
  The indexer matches every saved search against the articles it stores and publishes
  each match on the matches stream (docs/events.md).
"""

# No `from __future__ import annotations`: FastAPI reads these signatures at run time,
# and their Depends/Query markers refer to values local to the router factory.

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from elasticsearch import AsyncElasticsearch
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from services.query.api import MAX_CURSOR_LENGTH, SearchParams, search_params_dependency
from services.query.atom import (
    MEDIA_TYPE,
    Feed,
    FeedPage,
    feed_title,
    render,
    saved_search_feed_id,
    search_feed_id,
    search_page_path,
)
from services.query.cursors import decode_cursor
from services.query.following import (
    Following,
    SavedSearchesUnavailable,
    SavedSearchNotFound,
    TooManySavedSearches,
)
from services.query.limits import Client, RateLimiter, TrustedProxies, retry_after
from services.query.middleware import client_of
from services.query.search import SearchRequest
from shared.index import IndexNames
from shared.language.wording import saved_search_refusal
from shared.saved_searches import SAVED_SEARCH_ID, SavedSearch, SavedSearchFields
from shared.settings import QuerySettings
from shared.text import one_line

# A saved search's JSON is well under 2 KiB at its bounds' ordinary use; this leaves
# room for long words and filter values while refusing anything else unread.
MAX_BODY_BYTES = 16 * 1024
# A body sent a byte and then nothing held its connection, and a file descriptor, for
# ever: uvicorn bounds no body in time. Incomplete after this long, it is a 408.
BODY_SECONDS = 10.0
_CLOSE = {"Connection": "close"}
FEED_SIZE = 20
HOUR = 3600.0


class AtomResponse(Response):
    media_type = MEDIA_TYPE


ATOM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "an Atom 1.0 feed (RFC 4287), newest articles first",
        "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
    }
}


class SavedSearchAnswer(BaseModel):
    id: str
    name: str | None
    q: str
    source: list[str]
    country: list[str]
    tag: list[str]
    language: list[str]
    date_from: date | None
    date_to: date | None
    created_at: datetime
    url: str
    feed_url: str

    @classmethod
    def of(cls, saved: SavedSearch, base: str) -> "SavedSearchAnswer":
        path = f"/api/saved-searches/{saved.id}"
        return cls(
            **saved.model_dump(exclude={"id", "created_at"}),
            id=saved.id,
            created_at=saved.created_at,
            url=f"{base}{path}",
            feed_url=f"{base}{path}.atom",
        )


class _BodyTooLarge(Exception):
    pass


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The request's body, at most `limit` bytes and complete within BODY_SECONDS.

    Raises _BodyTooLarge, TimeoutError, or ClientDisconnect (the client left).
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks, size = [], 0
    async with asyncio.timeout(BODY_SECONDS):
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge
            chunks.append(chunk)
    return b"".join(chunks)


def _saved_search_fields(body: bytes) -> SavedSearchFields:
    try:
        fields = SavedSearchFields.model_validate_json(body)
    except ValidationError as exc:
        # Without the input each error was about: a client has its own body, and
        # what it sent may not be JSON again (NaN, bytes not UTF-8): a 500, not a 422.
        errors = exc.errors(include_url=False, include_input=False)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None
    # Here, not in the model: saved searches stored before the bound must still read.
    if emptiness := fields.emptiness():
        raise RequestValidationError([{"type": "value_error", "loc": ("body",), "msg": emptiness}])
    # Judged as it will run: cleaned as documents are (a zero-width space hid a `*`).
    if refusal := saved_search_refusal(one_line(fields.q)):
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", "q"), "msg": refusal}]
        )
    return fields


async def _saved_search_body(request: Request) -> bytes:
    try:
        return await _bounded_body(request, MAX_BODY_BYTES)
    # Closed after the answer: with the rest of the body unread, the connection would
    # stay open for whatever the client sends next, a byte at a time.
    except _BodyTooLarge:
        msg = f"a saved search is at most {MAX_BODY_BYTES} bytes of JSON"
        raise HTTPException(413, msg, headers=_CLOSE) from None
    except TimeoutError:
        msg = f"the body was not sent within {BODY_SECONDS:g}s"
        raise HTTPException(408, msg, headers=_CLOSE) from None
    except ClientDisconnect:  # nobody to answer, and nothing to log as an error
        raise HTTPException(400, "the client left before sending its body") from None


def _base(request: Request, public_url: str | None) -> str:
    """Where links point: CARAVAN_QUERY_PUBLIC_URL, else the address the request came to."""
    return (public_url or str(request.base_url)).rstrip("/")


def _self_and_next(request: Request, base: str, page: FeedPage) -> tuple[str, str | None]:
    """The feed's own URL as asked, and the next page's (RFC 5005 paging) when full."""
    # The base already holds the root path a proxy may mount the service under.
    path = base + request.url.path.removeprefix(request.scope.get("root_path", ""))
    query = request.url.query
    self_url = f"{path}?{query}" if query else path
    if page.next_cursor is None:
        return self_url, None
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "cursor")]
    return self_url, f"{path}?{urlencode([*kept, ('cursor', page.next_cursor)])}"


def _atom(feed: Feed) -> Response:
    return AtomResponse(render(feed))


@contextmanager
def _allowance(makers: RateLimiter | None, client: Client) -> Iterator[None]:
    """One of `client`'s saved searches (a 429 when it has none left), given back when
    the write is refused (the bound reached, the index not there, Elasticsearch away)."""
    if makers is None:
        yield
        return
    wait = makers.acquire(client, time.monotonic())
    if wait:
        raise HTTPException(
            429,
            f"at most {makers.burst} saved searches at once from one client, then one "
            f"every {HOUR / makers.burst:.0f} s; try again in {wait:.0f} s",
            headers={"Retry-After": retry_after(wait)},
        )
    try:
        yield
    except Exception:
        makers.refund(client)
        raise


def following_router(
    es: AsyncElasticsearch,
    names: IndexNames,
    settings: QuerySettings,
    proxies: TrustedProxies,
    time_zone: str,
) -> APIRouter:
    following = Following(
        es,
        names.articles,
        names.saved_searches,
        settings.exact_total_up_to,
        settings.saved_searches_max,
        time_zone,
    )
    per_hour = settings.saved_searches_per_client_hour
    makers = RateLimiter(per_hour / HOUR, per_hour) if per_hour else None
    router = APIRouter(prefix="/api")
    params_dependency = search_params_dependency(settings.max_page_size)

    @router.get("/search.atom", response_class=AtomResponse, responses=ATOM_RESPONSE)
    async def search_feed(
        request: Request, params: Annotated[SearchParams, Depends(params_dependency)]
    ) -> Response:
        """The search as an Atom feed: `/api/search`'s parameters and checks, newest first
        by publication date (`sort` is ignored)."""
        search = replace(params, sort="newest").request()
        base = _base(request, settings.public_url)
        page = await following.feed(search)
        self_url, next_url = _self_and_next(request, base, page)
        criteria = search.criteria
        return _atom(
            Feed(
                id=search_feed_id(criteria),
                title=feed_title(criteria),
                self_url=self_url,
                updated_when_empty=following.now(),
                entries=page.entries,
                alternate_url=f"{base}{search_page_path(criteria)}",
                next_url=next_url,
            )
        )

    saved_id_path = Path(pattern=SAVED_SEARCH_ID, description="the id `POST` answered")

    @router.post(
        "/saved-searches",
        status_code=201,
        response_model=SavedSearchAnswer,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": SavedSearchFields.model_json_schema(
                            ref_template="#/components/schemas/{model}"
                        )
                    }
                },
            }
        },
        responses={
            201: {"headers": {"Location": {"schema": {"type": "string"}}}},
            409: {"description": "as many saved searches as the service keeps"},
            413: {"description": f"a body over {MAX_BODY_BYTES} bytes"},
            503: {"description": "saved searches not available yet"},
        },
    )
    async def create_saved_search(request: Request) -> Response:
        """Save a search to follow: its feed, and a `SavedSearchMatch` on the matches
        stream for each article stored from now on that it matches. Words (`q`), or a
        filter, or both; the bounds of `/api/search`."""
        body = await _saved_search_body(request)
        fields = _saved_search_fields(body)
        with _allowance(makers, client_of(request.scope, proxies)):
            try:
                saved = await following.create(fields)
            except TooManySavedSearches as exc:
                raise HTTPException(409, str(exc)) from None
            except SavedSearchesUnavailable:
                raise _unavailable() from None
        answer = SavedSearchAnswer.of(saved, _base(request, settings.public_url))
        return JSONResponse(
            answer.model_dump(mode="json"), status_code=201, headers={"Location": answer.url}
        )

    @router.get(
        "/saved-searches/{saved_id}.atom",
        response_class=AtomResponse,
        responses={**ATOM_RESPONSE, 404: {"description": "no such saved search"}},
    )
    async def saved_search_feed(
        request: Request,
        saved_id: Annotated[str, saved_id_path],
        size: Annotated[int, Query(ge=1, le=settings.max_page_size)] = FEED_SIZE,
        cursor: Annotated[
            str | None,
            Query(max_length=MAX_CURSOR_LENGTH, description="from the feed's `next` link"),
        ] = None,
    ) -> Response:
        """A saved search's own feed: the newest articles its words and filters find."""
        saved = await _get(following, saved_id)
        criteria = saved.criteria()
        search = SearchRequest(
            q=criteria.q,
            size=size,
            sources=criteria.sources,
            countries=criteria.countries,
            tags=criteria.tags,
            languages=criteria.languages,
            date_from=criteria.date_from,
            date_to=criteria.date_to,
            sort="newest",
            cursor=decode_cursor(cursor) if cursor else None,
        )
        base = _base(request, settings.public_url)
        page = await following.feed(search)
        self_url, next_url = _self_and_next(request, base, page)
        return _atom(
            Feed(
                id=saved_search_feed_id(saved.id),
                title=feed_title(criteria, saved.name),
                self_url=self_url,
                updated_when_empty=saved.created_at,
                entries=page.entries,
                alternate_url=f"{base}{search_page_path(criteria)}",
                next_url=next_url,
            )
        )

    @router.get(
        "/saved-searches/{saved_id}",
        response_model=SavedSearchAnswer,
        responses={404: {"description": "no such saved search"}},
    )
    async def saved_search(
        request: Request, saved_id: Annotated[str, saved_id_path]
    ) -> SavedSearchAnswer:
        saved = await _get(following, saved_id)
        return SavedSearchAnswer.of(saved, _base(request, settings.public_url))

    @router.delete(
        "/saved-searches/{saved_id}",
        status_code=204,
        response_class=Response,
        responses={404: {"description": "no such saved search"}},
    )
    async def delete_saved_search(saved_id: Annotated[str, saved_id_path]) -> Response:
        """Delete a saved search: its feed is gone, and no article stored from now on
        is matched against it."""
        try:
            await following.delete(saved_id)
        except SavedSearchNotFound:
            raise HTTPException(404, "no such saved search") from None
        return Response(status_code=204)

    return router


async def _get(following: Following, saved_id: str) -> SavedSearch:
    try:
        return await following.get(saved_id)
    except SavedSearchNotFound:
        raise HTTPException(404, "no such saved search") from None


def _unavailable() -> HTTPException:
    return HTTPException(
        503,
        "saved searches are not available yet: the indexer makes their index when it starts",
        headers={"Retry-After": "5"},
    )
