"""query entry point: the HTTP API over the index."""


from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import structlog
import uvicorn
from elasticsearch import AsyncElasticsearch
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.query.quotes import LatestQuotes, build_latest, shape_latest
from services.query.search import PageOutOfRange, SearchPage, build_search, shape_results
from shared.clients import elasticsearch_ready, make_elasticsearch, make_redis
from shared.logging import configure_logging
from shared.settings import CommonSettings, ElasticsearchSettings, QuerySettings, RedisSettings

SERVICE = "query"
log = structlog.get_logger(__name__)


def create_app() -> FastAPI:
    common = CommonSettings()
    settings = QuerySettings()
    configure_logging(SERVICE, common.log_level, common.log_format)
    articles = f"{common.index_prefix}articles"
    quotes = f"{common.index_prefix}quotes"
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["es"] = make_elasticsearch(ElasticsearchSettings())
        state["redis"] = make_redis(RedisSettings())
        yield
        await state["es"].close()
        await state["redis"].aclose()

    app = FastAPI(title="Caravan query API", version="0.1.0", lifespan=lifespan,
                  description="Full-text search over articles and the latest currency quotes.")

    def es() -> AsyncElasticsearch:
        client: AsyncElasticsearch = state["es"]
        return client

    @app.exception_handler(PageOutOfRange)
    async def _out_of_range(_: Request, exc: PageOutOfRange) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    @app.get("/api/search", response_model=SearchPage)
    async def search(
        q: Annotated[str, Query(max_length=500, description="simple_query_string syntax")] = "",
        page: Annotated[int, Query(ge=1)] = 1,
        size: Annotated[int, Query(ge=1, le=settings.max_page_size)] = 10,
    ) -> SearchPage:
        body = build_search(q, page, size)
        response = await es().search(index=articles, body=body, ignore_unavailable=True)
        return shape_results(dict(response), page, size)

    @app.get("/api/quotes/latest", response_model=LatestQuotes)
    async def latest_quotes() -> LatestQuotes:
        response = await es().search(index=quotes, body=build_latest(), ignore_unavailable=True)
        if "aggregations" not in response:
            return LatestQuotes(quotes=[], ticker=[])
        return shape_latest(dict(response))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = {"elasticsearch": await elasticsearch_ready(es()),
                  "redis": await _redis_ready(state["redis"])}
        ready = all(checks.values())
        return JSONResponse(status_code=200 if ready else 503,
                            content={"ready": ready, "checks": checks})

    return app


async def _redis_ready(redis: Redis) -> bool:
    try:
        return bool(await redis.ping())
    except (RedisError, OSError):
        return False



def main() -> None:
    settings = QuerySettings()
    uvicorn.run(create_app(), host=settings.host, port=settings.port, log_config=None,
                timeout_graceful_shutdown=10)
