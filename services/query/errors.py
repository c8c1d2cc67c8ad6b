"""How the service answers what it cannot do: every refusal is a clear 4xx, never a 500.

API errors are JSON `{"detail": ...}`; a page address with malformed values gets
an HTML page that says which value is wrong.
"""

from collections.abc import Awaitable, Callable

import structlog
from elasticsearch import ApiError, BadRequestError
from elasticsearch import TransportError as ESTransportError
from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.query.backend import ArticleNotFound
from services.query.cursors import InvalidCursor
from services.query.middleware import app_path
from services.query.pages import PageRenderer
from services.query.search import InvalidSearch, PageOutOfRange
from shared.logging import Sparse

log = structlog.get_logger(__name__)
# While Elasticsearch is away every search fails alike: one line a minute says so.
UNAVAILABLE_LOG_SECONDS = 60.0


def _refuse(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    return handler


def _for_a_program(request: Request) -> bool:
    """An API address, wherever a proxy mounts the service (its root path stripped)."""
    return app_path(request.scope).startswith("/api/")


def install_error_handlers(app: FastAPI, renderer: PageRenderer) -> None:
    for error in (PageOutOfRange, InvalidSearch, InvalidCursor):
        app.add_exception_handler(error, _refuse(400))
    app.add_exception_handler(ArticleNotFound, _refuse(404))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if _for_a_program(request):
            return await request_validation_exception_handler(request, exc)
        return await renderer.invalid(request, exc)

    # The bodies are built to be valid; a refusal would be a bug (or an index not made by
    # Caravan), still answered as a 400, on a page as a page.
    @app.exception_handler(BadRequestError)
    async def _refused(request: Request, exc: BadRequestError) -> Response:
        problem = f"Elasticsearch refused the search: {exc.message}"
        if not _for_a_program(request):
            return await renderer.refused(request, problem)
        return JSONResponse(status_code=400, content={"detail": problem})

    unavailable_lines = Sparse(UNAVAILABLE_LOG_SECONDS)

    @app.exception_handler(ApiError)
    @app.exception_handler(ESTransportError)
    async def _unavailable(request: Request, exc: Exception) -> Response:
        suppressed = unavailable_lines.due()
        if suppressed is not None:
            log.warning("elasticsearch unavailable", error=str(exc), suppressed=suppressed)
        if not _for_a_program(request):
            return renderer.unavailable(request)
        return JSONResponse(
            status_code=503,
            content={"detail": "search is unavailable"},
            headers={"Retry-After": "5"},
        )
