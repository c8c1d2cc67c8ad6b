"""Searching the index from the command line, with the same query as the API."""

from __future__ import annotations

from services.query.backend import Backend
from services.query.search import SearchPage, SearchRequest
from shared.clients import make_elasticsearch
from shared.index import IndexNames
from shared.settings import Settings


async def search_once(settings: Settings, q: str, page: int, size: int) -> SearchPage:
    names = IndexNames(settings.common.index_prefix)
    async with make_elasticsearch(settings.elasticsearch) as es:
        backend = Backend(
            es,
            names.articles,
            names.quotes,
            settings.query.exact_total_up_to,
            cache_seconds=0,
            rate_digits=settings.query.rate_digits,
        )
        return await backend.search(SearchRequest(q=q, page=page, size=size, facets=False))
