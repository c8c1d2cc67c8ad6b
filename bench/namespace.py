"""Removing what a bench run left behind: its indices and its Redis keys."""

from __future__ import annotations

from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis


async def drop_namespace(es: AsyncElasticsearch, redis: Redis, indices: str, keys: str) -> None:
    """Delete the indices matching `indices` and the keys matching `keys` (patterns)."""
    # By name: deleting by wildcard is refused (action.destructive_requires_name).
    found = await es.indices.get(index=indices, allow_no_indices=True)
    if found:
        await es.indices.delete(index=",".join(found))
    names = [key async for key in redis.scan_iter(match=keys)]
    if names:
        await redis.delete(*names)
