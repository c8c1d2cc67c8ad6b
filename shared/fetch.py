"""Read a document from an http(s) URL or a local path, with limits.

Shared by ingest and ratefeed: both take "a URL or a path" for their sources.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx


class FetchError(Exception):
    """The document could not be read; the message says why."""


async def fetch_bytes(
    location: str, client: httpx.AsyncClient, *, max_bytes: int
) -> bytes:
    if location.startswith(("http://", "https://")):
        return await _fetch_http(location, client, max_bytes)
    if "://" in location:
        msg = f"unsupported URL scheme in {location!r}: only http, https and local paths"
        raise FetchError(msg)
    try:
        return await asyncio.to_thread(_read_file, Path(location), max_bytes)
    except OSError as exc:
        raise FetchError(f"{location}: {exc.strerror or exc}") from exc


def _read_file(path: Path, max_bytes: int) -> bytes:
    with path.open("rb") as handle:
        content = handle.read(max_bytes + 1)
    if len(content) > max_bytes:
        msg = f"{path}: over the {max_bytes}-byte limit"
        raise FetchError(msg)
    return content


async def _fetch_http(url: str, client: httpx.AsyncClient, max_bytes: int) -> bytes:
    try:
        async with client.stream("GET", url) as response:
            if response.status_code >= 400:
                msg = f"{url}: HTTP {response.status_code}"
                raise FetchError(msg)
            chunks: list[bytes] = []
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    msg = f"{url}: body over the {max_bytes}-byte limit"
                    raise FetchError(msg)
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc


def http_client(user_agent: str, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers={"User-Agent": user_agent},
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        max_redirects=5,
    )
