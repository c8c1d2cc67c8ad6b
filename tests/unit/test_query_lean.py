"""The short path of `GET /api/search` reads parameters as the route does, or leaves them
to it, and answers failures with the app's own handlers (services/query/lean.py)."""

# No `from __future__ import annotations`: FastAPI reads the route's signature at run time.

import asyncio
import json
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import pytest
from elastic_transport import ApiResponseMeta, ConnectionError, HttpHeaders, NodeConfig
from elasticsearch import ApiError, BadRequestError
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from hypothesis import event, given, settings
from hypothesis import strategies as st
from starlette.types import Receive, Scope, Send

from services.query.api import MAX_CURSOR_LENGTH, SearchParams, search_params_dependency
from services.query.backend import SEARCH_PARAMS, SEARCH_QUERY
from services.query.errors import install_error_handlers
from services.query.lean import LeanSearch, plain_params
from services.query.search import SearchPage, SearchRequest

MAX_PAGE_SIZE = 50


def _route_app() -> FastAPI:
    """The route's own reading of the parameters, as JSON (or its 422)."""
    app = FastAPI()
    dependency = search_params_dependency(MAX_PAGE_SIZE)

    @app.get("/api/search")
    async def search(params: Annotated[SearchParams, Depends(dependency)]) -> JSONResponse:
        return JSONResponse(_plain(params))

    return app


def _plain(params: SearchParams) -> dict[str, Any]:
    fields = asdict(params)
    fields["date_from"] = str(fields["date_from"])
    fields["date_to"] = str(fields["date_to"])
    fields.update({k: list(v) for k, v in fields.items() if isinstance(v, tuple)})
    return fields


ROUTE = _route_app()


def _get(url: httpx.URL) -> httpx.Response:
    """The route's answer to `url`, in process through httpx's ASGI transport."""

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ROUTE)) as client:
            return await client.get(url)

    return asyncio.run(get())


NAMES = ["q", "page", "size", "source", "country", "tag", "language"]
NAMES += ["date_from", "date_to", "sort", "cursor", "other"]
VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "1",
            "01",
            "2",
            "10",
            "50",
            "51",
            "0",
            "-1",
            "+1",
            " 1",
            "1.0",
            "1e3",
            "١",
            "999999999",
            "9999999999",
            "relevance",
            "newest",
            "Newest",
            "2025-03-01",
            "2025-02-30",
            "2025-3-1",
            "20250301",
            "0000-01-01",
            "2025-03-01T00:00:00",
            "x" * 500,
            "x" * 501,
            "x" * 2001,
            "Java OR Microsoft",
            '"a b"',
            "Плисецкая",
            "%ZZ",
            "%FF",
            "a&b",
            "a=b",
            "a*",  # refused by the route: left to it
            "ab* cd~",
        ]
    ),
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=8), st.integers(0, 22))
def test_what_the_short_path_reads_the_route_reads_the_same(
    pairs: list[tuple[str, str]], repeats: int
) -> None:
    pairs = [*pairs, *[("source", "s")] * repeats]
    query = "&".join(f"{quote(k)}={quote(v, safe='%+ ')}" for k, v in pairs).replace(" ", "+")
    read = plain_params(query.encode("latin-1", "replace"), MAX_PAGE_SIZE)
    url = httpx.URL("http://q/api/search").copy_with(query=query.encode("ascii", "replace"))
    response = _get(url)
    event("short path" if read is not None else "left to the route")
    if read is not None:
        # The short path takes only what the route takes, and reads it the same.
        assert response.status_code == 200, (query, response.text)
        assert response.json() == _plain(read), query


def test_plainly_valid_parameters_take_the_short_path() -> None:
    params = plain_params(
        b"q=Java+OR+%22a+b%22&page=3&size=50&source=a&source=b&country=UZ&tag=t&language=ru"
        b"&date_from=2025-03-01&date_to=2025-04-30&sort=newest&cursor=abc&lang=ru",
        MAX_PAGE_SIZE,
    )
    assert params == SearchParams(
        'Java OR "a b"',
        3,
        50,
        ("a", "b"),
        ("UZ",),
        ("t",),
        ("ru",),
        date(2025, 3, 1),
        date(2025, 4, 30),
        "newest",
        "abc",
    )
    assert plain_params(b"", MAX_PAGE_SIZE) == SearchParams(
        "", 1, 10, (), (), (), (), None, None, "relevance", None
    )


@pytest.mark.parametrize(
    "query",
    [
        b"page=0",
        b"page=01",
        b"page=1.0",
        b"size=51",
        b"sort=oldest",
        b"date_from=20250301",
        b"date_from=2025-02-30",
        b"q=" + b"x" * 501,
        b"cursor=" + b"x" * (MAX_CURSOR_LENGTH + 1),
        b"&".join([b"tag=t"] * 21),
    ],
)
def test_anything_else_is_left_to_the_route(query: bytes) -> None:
    assert plain_params(query, MAX_PAGE_SIZE) is None


def test_the_query_string_is_the_one_the_client_would_make() -> None:
    from elasticsearch._sync.client.utils import _quote_query  # noqa: PLC0415

    assert _quote_query(SEARCH_PARAMS) == SEARCH_QUERY


class _Failing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def search(self, request: SearchRequest) -> SearchPage:
        raise self.error


class _Fallback:
    called = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        response = JSONResponse({"route": True})
        await response(scope, receive, send)


def _meta(status: int) -> ApiResponseMeta:
    return ApiResponseMeta(
        status, "1.1", HttpHeaders(), 0.01, NodeConfig("http", "localhost", 9200)
    )


@pytest.mark.parametrize(
    ("error", "status", "body", "retry_after"),
    [
        (
            BadRequestError("parsing_exception", _meta(400), {}),
            400,
            {"detail": "Elasticsearch refused the search: parsing_exception"},
            None,
        ),
        (ApiError("boom", _meta(500), {}), 503, {"detail": "search is unavailable"}, "5"),
        (ConnectionError("refused"), 503, {"detail": "search is unavailable"}, "5"),
    ],
)
async def test_failures_are_answered_by_the_apps_handlers(
    error: Exception, status: int, body: dict[str, Any], retry_after: str | None
) -> None:
    app = FastAPI()
    install_error_handlers(app, renderer=None)  # type: ignore[arg-type]
    fallback = _Fallback()
    lean = LeanSearch(fallback, _Failing(error), MAX_PAGE_SIZE, app.exception_handlers)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=lean), base_url="http://q"
    ) as client:
        response = await client.get("/api/search", params={"q": "x"})
        assert not fallback.called
        assert (response.status_code, json.loads(response.content)) == (status, body)
        assert response.headers.get("retry-after") == retry_after
        assert response.headers["content-type"] == "application/json"
        # Other paths, methods and doubtful parameters: the app's routes.
        for request in (
            client.get("/api/search", params={"page": "0"}),
            client.get("/api/suggest"),
            client.head("/api/search"),
        ):
            assert (await request).status_code == 200
        assert fallback.called


async def test_an_error_without_a_handler_goes_up() -> None:
    lean = LeanSearch(_Fallback(), _Failing(KeyError("bug")), MAX_PAGE_SIZE, {})  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=lean), base_url="http://q"
    ) as client:
        with pytest.raises(KeyError):
            await client.get("/api/search")


class _Pages:
    """The page renderer's stand-in: says that a page answered."""

    def unavailable(self, _: Any) -> HTMLResponse:
        return HTMLResponse("page", status_code=503)


@pytest.mark.parametrize("root_path", ["", "/caravan"])
async def test_api_failures_are_json_wherever_the_service_is_mounted(root_path: str) -> None:
    app = FastAPI()  # mounted by the server (the transport here), as a proxy has it
    install_error_handlers(app, renderer=_Pages())  # type: ignore[arg-type]

    @app.get("/api/thing")
    async def thing() -> None:
        raise ConnectionError("refused")

    @app.get("/thing")
    async def search_page() -> None:
        raise ConnectionError("refused")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, root_path=root_path), base_url="http://q"
    ) as client:
        api = await client.get(f"{root_path}/api/thing")
        page = await client.get(f"{root_path}/thing")
    assert api.json() == {"detail": "search is unavailable"}
    assert page.text == "page"
