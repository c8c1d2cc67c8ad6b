"""`GET /api/search` on a short path: the same answers, without the framework's per-request work.

FastAPI answers a search by matching it against every route, solving the
parameter dependency (eleven checked parameters, each through pydantic), building
a Request and a Response and passing each through its exception and exit-stack
layers: about as much CPU as the search's own work. This ASGI middleware sits
inside the rate limit and the cache headers and answers the searches whose
parameters are plainly valid (digits within their bounds, dates as YYYY-MM-DD,
a known sort, lengths within their limits) itself: it builds the same
SearchParams the route's dependency would, asks the same Backend, and writes the
same JSON. Everything else, every parameter FastAPI might refuse or read
differently (`page=01`, `date_from=20250105`, a 501-character `q`), goes on to
the route, whose checks answer it as always, so every 422 stays FastAPI's own.
The route stays declared as it was: the OpenAPI document is generated from it.

An exception is answered by the app's own handler for it (errors.py: 400s, 503s),
looked up as Starlette's exception middleware does; one with no handler goes on
up to the server-error middleware, as from the route. With FastAPI's own
telemetry on (an OpenTelemetry provider set up in the process) every request
takes the route, which that telemetry instruments.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.query.api import (
    FILTERS,
    MAX_CURSOR_LENGTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    SearchParams,
)
from services.query.backend import Backend
from services.query.cursors import SORT_MODES, SortMode
from services.query.middleware import app_path
from services.query.search import SearchPage
from shared.language.wording import operators_refusal
from shared.saved_searches import MAX_VALUE_CHARS

PATH = "/api/search"
_NUMBER = re.compile(r"[1-9][0-9]{0,8}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SORTS: Mapping[str, SortMode] = {mode: mode for mode in SORT_MODES}
_PAGE_SERIALIZER = SearchPage.__pydantic_serializer__
_JSON = b"application/json"


def plain_params(query_string: bytes, max_page_size: int) -> SearchParams | None:
    """The search parameters of a query string, as the route's dependency makes them;
    None unless every one is plainly valid (the route then decides)."""
    # As Starlette reads a query string (QueryParams): a repeated scalar's last value counts.
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    scalars: dict[str, str] = {}
    terms: dict[str, list[str]] = {}
    for name, value in pairs:
        if name in FILTERS:
            terms.setdefault(name, []).append(value)
        else:
            scalars[name] = value
    q = scalars.get("q", "")
    cursor = scalars.get("cursor")
    if len(q) > MAX_QUERY_LENGTH or (cursor is not None and len(cursor) > MAX_CURSOR_LENGTH):
        return None
    if operators_refusal(q) is not None:
        return None  # the route refuses it, and says why
    if any(
        len(values) > MAX_TERMS or any(len(v) > MAX_VALUE_CHARS for v in values)
        for values in terms.values()
    ):
        return None
    page = _number(scalars.get("page", "1"))
    size = _number(scalars.get("size", "10"))
    sort = _SORTS.get(scalars.get("sort", "relevance"))
    if page is None or size is None or size > max_page_size or sort is None:
        return None
    dates: list[date | None] = []
    for name in ("date_from", "date_to"):
        text = scalars.get(name)
        if text is None:
            dates.append(None)
            continue
        day = _date(text)
        if day is None:
            return None
        dates.append(day)
    return SearchParams(
        q,
        page,
        size,
        tuple(terms.get("source", ())),
        tuple(terms.get("country", ())),
        tuple(terms.get("tag", ())),
        tuple(terms.get("language", ())),
        dates[0],
        dates[1],
        sort,
        cursor,
    )


def _number(text: str) -> int | None:
    return int(text) if _NUMBER.fullmatch(text) else None


def _date(text: str) -> date | None:
    if not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


Handler = Callable[[Request, Exception], Any]


class LeanSearch:
    def __init__(
        self,
        app: ASGIApp,
        backend: Backend,
        max_page_size: int,
        exception_handlers: Mapping[Any, Handler],
    ) -> None:
        self.app = app
        self.backend = backend
        self.max_page_size = max_page_size
        # The app's own mapping: handlers added to it later are seen too.
        self.exception_handlers = exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or app_path(scope) != PATH
            or "fastapi.telemetry" in scope
        ):
            await self.app(scope, receive, send)
            return
        params = plain_params(scope["query_string"], self.max_page_size)
        if params is None:
            await self.app(scope, receive, send)
            return
        try:
            page = await self.backend.search(params.request())
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = handler(Request(scope, receive), exc)
            if inspect.isawaitable(response):
                response = await response
            await response(scope, receive, send)
            return
        # What the route's Response(model_dump_json(), media_type=...) sends.
        body = _PAGE_SERIALIZER.to_json(page)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", _JSON),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _handler(self, exc: Exception) -> Handler | None:
        for kind in type(exc).__mro__:
            if kind in self.exception_handlers:
                return self.exception_handlers[kind]
        return None
