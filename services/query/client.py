"""Searching the index from the command line, with the same query as the API."""

from __future__ import annotations

from services.query.backend import Backend
from services.query.search import SearchPage, SearchRequest
from shared.clients import make_elasticsearch
from shared.index import IndexNames
from shared.settings import CommonSettings, ElasticsearchSettings, QuerySettings


async def search_once(q: str, page: int, size: int) -> SearchPage:
    names = IndexNames(CommonSettings().index_prefix)
    settings = QuerySettings()
    async with make_elasticsearch(ElasticsearchSettings()) as es:
        backend = Backend(es, names.articles, names.quotes,
                          settings.exact_total_up_to, cache_seconds=0,
                          rate_digits=settings.rate_digits)
        return await backend.search(SearchRequest(q=q, page=page, size=size, facets=False))
