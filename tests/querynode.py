"""The query service in process over a stand-in Elasticsearch node holding a few articles.

For what the service makes of documents a real node would hold but the pipeline no
longer writes (another version's, another tool's) and for what every answer carries,
without servers: every search finds every article the node holds, a get finds one by
its id, and the live ticker's Redis has nothing new to tell.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders
from elasticsearch import NotFoundError

from services.query import app as query_app
from shared.settings import Settings

NOT_FOUND = ApiResponseMeta(404, "1.1", HttpHeaders(), 0.0, None)  # type: ignore[arg-type]


def article(doc_id: str, **source: Any) -> dict[str, Any]:
    """A document as the index holds it; `source` changes or adds its fields."""
    fields = {
        "title": "Caravan",
        "url": f"https://news.example/{doc_id}",
        "source": "news.example",
        "summary": "A caravan crossed the steppe.",
        "published_at": "2026-01-02T00:00:00Z",
        "fetched_at": "2026-01-02T01:00:00Z",
    }
    return {"_id": doc_id, "_source": fields | source}


class Node:
    """Elasticsearch as the query service asks it, holding `documents`."""

    def __init__(
        self,
        *documents: dict[str, Any],
        error: Exception | None = None,
        search_extra: dict[str, Any] | None = None,
        took: int = 1,
    ) -> None:
        self.documents = {document["_id"]: document for document in documents}
        self.error = error  # raised by every request instead of an answer
        # What every search answer holds besides its hits: aggregations, suggestions.
        self.search_extra = search_extra or {}
        self.took = took  # every answer's, in ms

    def options(self, **_: Any) -> Node:
        return self

    def _hits(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        hits = [{**doc, "sort": [n, doc["_id"]]} for n, doc in enumerate(self.documents.values())]
        total = {"value": len(hits), "relation": "eq"}
        return {"took": self.took, "hits": {"total": total, "hits": hits}}

    async def perform_request(self, *_: Any, **__: Any) -> SimpleNamespace:
        return SimpleNamespace(body=self._hits() | self.search_extra)

    async def search(self, **_: Any) -> dict[str, Any]:
        return self._hits()  # no aggregations: the ticker is empty

    async def get(self, *, id: str, **_: Any) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        if id not in self.documents:
            raise NotFoundError("not found", NOT_FOUND, {"found": False})
        return self.documents[id]

    async def close(self) -> None:
        pass


class QuietRedis:
    """The quotes stream, with no quote coming."""

    async def xrevrange(self, *_: Any, **__: Any) -> list[Any]:
        return []

    async def xrange(self, *_: Any, **__: Any) -> list[Any]:
        return []  # the readiness check's read of an entry that cannot exist

    async def xread(self, *_: Any, **__: Any) -> list[Any]:
        await asyncio.Event().wait()
        return []

    async def aclose(self) -> None:
        pass


@asynccontextmanager
async def query_over(
    node: Node, monkeypatch: pytest.MonkeyPatch, **query: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the query app over `node`; `query`: settings of the service. An
    exception no handler answers is the app's 500, as a server sends it."""
    monkeypatch.setattr(query_app, "make_elasticsearch", lambda _: node)
    monkeypatch.setattr(query_app, "make_redis", lambda _: QuietRedis())
    settings = Settings.from_env()
    fixed = {"cache_seconds": 0.0, "rate_limit": 0.0, **query}
    app = query_app.create_app(replace(settings, query=settings.query.model_copy(update=fixed)))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://query") as client,
    ):
        yield client
