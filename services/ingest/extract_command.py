"""`caravan extract`: what ingest makes of article pages, one JSON object per line.

The same code path as ingest (the guarded fetcher or a local read, charset detection,
extract_article), so it shows why an article looks the way it does in the index.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, TextIO

from services.ingest.app import fetch_policy, page_sandbox, parse_limits
from services.ingest.charset import decode
from services.ingest.extract import MIN_TEXT_CHARS, Extracted, extract_article
from shared.fetch import FetchError
from shared.fetcher import FetchPolicy, PoliteFetcher
from shared.sandbox import ParseFailed, Sandbox, SandboxLimits
from shared.settings import Settings

STDIN = "-"


def record(source: str, extracted: Extracted | None) -> dict[str, object]:
    """The JSON object for one page; a page without an article says so instead of failing."""
    if extracted is None:
        return {
            "source": source,
            "path": None,
            "error": f"no article text (under {MIN_TEXT_CHARS} characters)",
        }
    return {
        "source": source,
        "title": extracted.title,
        "text": extracted.text,
        "authors": extracted.authors,
        "date": extracted.date,
        "language": extracted.language,
        "site_name": extracted.site_name,
        "canonical_url": extracted.canonical_url,
        "path": extracted.path,
    }


def page_url(source: str, fetched_url: str) -> str:
    """The URL trafilatura resolves links against: the final URL of a fetch, a file: URL
    for a local page, nothing for standard input."""
    if source == STDIN:
        return ""
    if fetched_url.startswith(("http://", "https://")):
        return fetched_url
    return Path(fetched_url).resolve().as_uri()


async def extract_sources(
    sources: Iterable[str], policy: FetchPolicy, stdin: BinaryIO, limits: SandboxLimits
) -> list[dict[str, object]]:
    """One record per source, in order; a source that cannot be read gets an `error`."""
    records: list[dict[str, object]] = []
    sandbox = page_sandbox(limits)
    try:
        async with PoliteFetcher(policy) as fetcher:
            for source in sources:
                records.append(await _extract_one(source, fetcher, sandbox, stdin))
    finally:
        sandbox.close()
    return records


async def _extract_one(
    source: str, fetcher: PoliteFetcher, sandbox: Sandbox, stdin: BinaryIO
) -> dict[str, object]:
    policy = fetcher.policy
    try:
        if source == STDIN:
            content = stdin.read(policy.max_bytes + 1)
            if len(content) > policy.max_bytes:
                raise FetchError(f"standard input: over the {policy.max_bytes}-byte limit")
            url, content_type = "", None
        else:
            fetched = await fetcher.fetch(source)
            content, url, content_type = fetched.content, fetched.url, fetched.content_type
        html, _ = decode(content, content_type)
        extracted = await sandbox.run(extract_article, html, page_url(source, url))
    except (FetchError, ParseFailed) as exc:  # unreadable, or out of time or memory
        return {"source": source, "path": None, "error": str(exc)}
    return record(source, extracted)


def run(
    sources: list[str],
    policy: FetchPolicy,
    stdin: BinaryIO,
    out: TextIO,
    limits: SandboxLimits | None = None,
) -> int:
    """Write the records as JSON lines; the exit status: 1 when any page had no article."""
    records = asyncio.run(extract_sources(sources, policy, stdin, limits or SandboxLimits()))
    for entry in records:
        out.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return 1 if any("error" in entry for entry in records) else 0


def main(settings: Settings, sources: list[str]) -> None:
    """`caravan extract PATH_OR_URL...`: fetched as ingest fetches (its settings:
    CARAVAN_INGEST_*, CARAVAN_FETCH_ALLOW)."""
    policy = fetch_policy(settings.common.user_agent, settings.ingest, settings.fetch)
    status = run(sources, policy, sys.stdin.buffer, sys.stdout, parse_limits(settings.ingest))
    if status:
        raise SystemExit(status)
