"""Read a document from a local path, with a size limit; and the error every fetch raises.

Ingest and the rate feed both take "a URL or a path" for their sources: URLs go
through the guarded fetcher (shared/fetcher.py), paths are read here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path


class FetchError(Exception):
    """The document could not be read; the message says why."""


async def read_local(location: str, *, max_bytes: int) -> bytes:
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
