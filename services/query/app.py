"""query entry point: the HTTP API and the search page over the index."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
import uvicorn
from elasticsearch import AsyncElasticsearch
from elasticsearch import TransportError as ESTransportError
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from services.query.api import api_router
from services.query.backend import Backend
from services.query.errors import install_error_handlers
from services.query.following_api import following_router
from services.query.lean import LeanSearch
from services.query.limits import Places, RateLimiter, TrustedProxies, TtlCache
from services.query.live import QuoteBroadcaster
from services.query.middleware import (
    BusyMiddleware,
    CacheControlMiddleware,
    NoSniffMiddleware,
    RateLimitMiddleware,
)
from services.query.pages import HERE, PageRenderer, pages_router
from services.query.rates_api import rates_router
from services.query.search import language_features
from shared.clients import READY_TIMEOUT, elasticsearch_ready, make_elasticsearch, make_redis
from shared.health import Readiness, metrics_route, redis_ready
from shared.httpserver import PipelineSafeHttpToolsProtocol
from shared.index import IndexNames
from shared.logging import configure_logging
from shared.runtime import settle_after_startup
from shared.settings import Settings
from shared.streams import Streams

SERVICE = "query"
READINESS_SECONDS = 1.0
log = structlog.get_logger(__name__)


class QueryApp(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Around the server-error middleware too, outside every added one: its 500s,
        # the rate limit's 429s and the short path's searches carry the header as well.
        return NoSniffMiddleware(super().build_middleware_stack())


def create_app(all_settings: Settings) -> FastAPI:
    common, settings = all_settings.common, all_settings.query
    configure_logging(SERVICE, common.log_level, common.log_format)
    all_settings.log_unknown()
    state: dict[str, Any] = {
        "es": make_elasticsearch(all_settings.elasticsearch).options(
            request_timeout=settings.search_timeout
        ),
        "redis": make_redis(all_settings.redis),
    }
    names = IndexNames(common.index_prefix)
    backend = Backend(
        state["es"],
        names.articles,
        names.quotes,
        settings.exact_total_up_to,
        settings.cache_seconds,
        settings.rate_digits,
        common.time_zone,
    )
    renderer = PageRenderer(backend)
    quotes_stream = Streams(common).quotes
    broadcaster = QuoteBroadcaster(
        state["redis"],
        quotes_stream,
        Places(settings.live_max_connections, settings.live_max_per_client),
        settings.live_max_seconds,
    )
    proxies = TrustedProxies.parse(settings.trusted_proxies, settings.trusted_proxy_cidrs)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await broadcaster.close()
        await state["es"].close()
        await state["redis"].aclose()

    app = QueryApp(
        title="Caravan query API",
        version="0.1.0",
        lifespan=lifespan,
        description="Full-text search over articles and the latest currency quotes.",
    )

    def es() -> AsyncElasticsearch:
        client: AsyncElasticsearch = state["es"]
        return client

    install_error_handlers(app, renderer)
    # Innermost: the rate limit and the cache headers apply to its answers as to the routes'.
    app.add_middleware(
        LeanSearch,
        backend=backend,
        max_page_size=settings.max_page_size,
        exception_handlers=app.exception_handlers,
    )
    app.add_middleware(CacheControlMiddleware, seconds=settings.cache_seconds)
    app.add_middleware(
        RateLimitMiddleware,
        limiter=(
            RateLimiter(
                settings.rate_limit, settings.rate_burst, search_ms=settings.rate_limit_search_ms
            )
            if settings.rate_limit
            else None
        ),
        proxies=proxies,
        in_flight=Places(None, settings.max_in_flight_per_client),
    )
    # Outside the rate limit: a request shed for the process's load costs its client nothing.
    app.add_middleware(BusyMiddleware, most=settings.max_in_flight)
    app.include_router(api_router(backend, broadcaster, settings.max_page_size, proxies))
    app.include_router(following_router(state["es"], names, settings, proxies, common.time_zone))
    app.include_router(pages_router(renderer, settings.max_page_size))
    app.include_router(
        rates_router(es, backend.quotes, settings.rate_digits, settings.convert_window_days)
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.router.routes.append(metrics_route())

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # Probes are not rate-limited, and each reading asks Elasticsearch twice: 1,500 a
    # second from one client cost the cluster 0.7 s of CPU each second. A reading
    # answers every probe for a second after it ends; probes meanwhile wait for it.
    readings: TtlCache[Readiness] = TtlCache(READINESS_SECONDS, max_keys=1)
    reading = asyncio.Lock()

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        async with reading:
            readiness = readings.get("readyz", time.monotonic())
            if readiness is None:
                readiness = await _readiness()
                readings.put("readyz", readiness, time.monotonic())
        return JSONResponse(
            status_code=200 if readiness.ready else 503, content=readiness.as_json()
        )

    async def _unanalysed() -> int | None:
        # Why a search may still miss other forms: articles indexed before them. Bounded
        # as the other checks are: a count waits in a search queue that load fills.
        with contextlib.suppress(ESTransportError, OSError, TimeoutError):
            async with asyncio.timeout(READY_TIMEOUT):
                return await backend.unanalysed()
        return None

    async def _readiness() -> Readiness:
        # At once, each bounded: one after another they took longer than a probe waits,
        # and under search load every replica left its Service together.
        es_ok, unanalysed, redis_ok = await asyncio.gather(
            elasticsearch_ready(es(), names.owned),
            _unanalysed(),
            redis_ready(state["redis"], quotes_stream),
        )
        language = language_features()
        if es_ok and unanalysed is not None:
            language["unanalysed_articles"] = unanalysed
        # Searching needs Elasticsearch only; without Redis just the live ticker
        # stops, which is no reason to take the pod out of its Service.
        return Readiness(
            checks={"elasticsearch": es_ok},
            details={"language": language, "redis_live_ticker": redis_ok},
        )

    return app


def main(settings: Settings) -> None:
    app = create_app(settings)
    settle_after_startup()
    # proxy_headers off: the client address is the socket peer, and X-Forwarded-For is
    # read by the rate limit alone, as CARAVAN_QUERY_TRUSTED_PROXIES* say.
    uvicorn.run(
        app,
        host=settings.query.host,
        port=settings.query.port,
        http=PipelineSafeHttpToolsProtocol,
        log_config=None,
        # A request line holds saved-search ids (each one the key to its search) and
        # people's search words: neither belongs in the log store.
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.common.shutdown_grace),
    )
