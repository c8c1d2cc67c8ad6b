"""Searching the index from the command line, with the same query as the API."""

from __future__ import annotations

from services.query.search import SearchPage, build_search, shape_results
from shared.clients import make_elasticsearch
from shared.settings import CommonSettings, ElasticsearchSettings


async def search_once(q: str, page: int, size: int) -> SearchPage:
    index = f"{CommonSettings().index_prefix}articles"
    async with make_elasticsearch(ElasticsearchSettings()) as es:
        response = await es.search(index=index, body=build_search(q, page, size),
                                   ignore_unavailable=True)
    return shape_results(dict(response), page, size)
