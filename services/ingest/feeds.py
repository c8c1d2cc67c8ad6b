"""RSS and Atom feeds to ArticleEvents: a pure function of the feed's bytes.

Decisions worth knowing:
- A feed that is not well-formed is still read when feedparser recovers entries
  from it; it is an error only when nothing usable comes out.
- Dates that cannot be parsed, or are absurd (before 1991, the epoch placeholder
  some generators emit, or more than a day in the future), become "unknown".
- Some feeds give every item the same link (the site's home page). A link shared
  by several items identifies none of them, so those items are keyed by their
  guid, or by their title when there is no guid.
"""

from __future__ import annotations

import calendar
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser

from services.ingest.sources import Source
from services.ingest.text import html_to_text, normalize_whitespace
from services.ingest.urls import canonicalize_url
from shared.events import ArticleEvent, content_hash

_EARLIEST = datetime(1991, 1, 1, tzinfo=UTC)
_FUTURE_SLACK = timedelta(days=1)


class FeedError(ValueError):
    """The document is not a feed we can read anything from."""


@dataclass(frozen=True)
class Skipped:
    position: int
    reason: str


@dataclass
class FeedParse:
    title: str
    events: list[ArticleEvent] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warning: str | None = None


def parse_feed(content: bytes, source: Source, fetched_at: datetime) -> FeedParse:
    parsed: Any = feedparser.parse(content, sanitize_html=False, resolve_relative_uris=False)
    entries: list[Any] = list(parsed.entries)
    warning = str(parsed.get("bozo_exception")) if parsed.get("bozo") else None
    if not entries and not parsed.feed.get("title"):
        msg = f"not a readable RSS/Atom feed: {warning or 'no channel and no items'}"
        raise FeedError(msg)

    result = FeedParse(title=normalize_whitespace(parsed.feed.get("title", "")), warning=warning)
    link_counts = Counter(entry.get("link", "").strip() for entry in entries)
    feed_language = _language(parsed.feed.get("language")) or source.language
    for position, entry in enumerate(entries):
        try:
            event = _to_event(entry, source, fetched_at, feed_language, link_counts)
        except _SkipError as skip:
            result.skipped.append(Skipped(position, str(skip)))
        else:
            result.events.append(event)
    return result


class _SkipError(Exception):
    pass


def _to_event(
    entry: Any,
    source: Source,
    fetched_at: datetime,
    feed_language: str | None,
    link_counts: Counter[str],
) -> ArticleEvent:
    link = entry.get("link", "").strip()
    if not link.startswith(("http://", "https://")):
        raise _SkipError(f"no usable link ({link!r})")
    title = html_to_text(entry.get("title", ""))
    summary = html_to_text(entry.get("summary", ""))
    if not title:
        raise _SkipError("no title")
    body = "\n\n".join(
        text for part in entry.get("content", []) if (text := html_to_text(part.get("value", "")))
    )
    canonical = canonicalize_url(link)
    if link_counts[link] > 1:
        discriminator = entry.get("id") or hashlib.sha256(title.encode()).hexdigest()[:16]
        canonical = f"{canonical}#item={discriminator}"
    return ArticleEvent(
        source=source.name,
        url=link,
        canonical_url=canonical,
        title=title,
        summary=summary,
        body=body or summary,
        authors=_authors(entry),
        published_at=_date(_published(entry), fetched_at),
        language=_language(entry.get("language")) or feed_language,
        tags=sorted({*source.tags, *_tags(entry)}),
        countries=list(source.countries),
        fetched_at=fetched_at,
        content_hash=content_hash(title, body or summary),
    )


def _published(entry: Any) -> Any:
    # Plain dict lookups: feedparser's own mapping of `updated_parsed` onto
    # `published_parsed` is deprecated and warns.
    return dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")


def _date(value: Any, fetched_at: datetime) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    if moment < _EARLIEST or moment > fetched_at + _FUTURE_SLACK:
        return None
    return moment


def _authors(entry: Any) -> list[str]:
    names = [normalize_whitespace(a.get("name", "")) for a in entry.get("authors", [])]
    return [name for name in names if name]


def _tags(entry: Any) -> list[str]:
    terms = (normalize_whitespace(t.get("term") or "") for t in entry.get("tags", []))
    return [term for term in terms if term]


def _language(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().split("-")[0].lower()
