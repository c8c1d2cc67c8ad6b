"""RSS and Atom feeds to ArticleEvents: a pure function of the feed's bytes.

Decisions worth knowing:
- A feed that is not well-formed is still read when feedparser recovers entries
  from it; it is an error only when nothing usable comes out.
- Dates that cannot be parsed, or are absurd (before 1991, the epoch placeholder
  some generators emit, or more than a day in the future), become "unknown".
  A date written without a zone is local time of the source (its `timezone`).
- Some feeds give every item the same link (the site's home page). A link shared
  by several items identifies none of them, so those items are keyed by their
  guid, or by their title when there is no guid.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser

from services.ingest.dates import from_utc_struct, parse_date
from services.ingest.markup import feed_with_few_attributes
from services.ingest.sources import Source
from services.ingest.text import html_to_text
from services.ingest.urls import canonicalize_url, is_web_url
from shared.events import (
    SUMMARY_CHARS,
    TITLE_CHARS,
    ArticleEvent,
    article_tags,
    clipped,
    content_hash,
    labels,
    language_code,
    source_key,
    web_url,
)
from shared.text import normalize_whitespace

# A numeric character reference to no character (a surrogate, past U+10FFFF, or of
# more digits than any has) makes feedparser raise (OverflowError, ValueError,
# UnicodeEncodeError) and lose the whole feed, good items too: it is read as U+FFFD.
_CHARACTER_REFERENCE = re.compile(rb"&#(?:([0-9]+)|[xX]([0-9a-fA-F]+));")
_NO_CHARACTER = b"&#xFFFD;"


def _character(reference: re.Match[bytes]) -> bytes:
    decimal, hexadecimal = reference.groups()
    digits = (decimal if decimal is not None else hexadecimal).lstrip(b"0")
    if len(digits) > 7:  # more than 1114111 or 10FFFF has, read without converting
        return _NO_CHARACTER
    code = int(digits or b"0", 10 if decimal is not None else 16)
    if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
        return reference[0]
    return _NO_CHARACTER


class FeedError(ValueError):
    """The document is not a feed we can read anything from."""


@dataclass(frozen=True)
class Skipped:
    position: int
    reason: str


@dataclass
class FeedParse:
    title: str
    # Each article once, as it first appears, as many as the poll has room for.
    events: list[ArticleEvent] = field(default_factory=list)
    # The link of each of `events` as the feed wrote it, which events carry escaped:
    # the article's page is found, and its key derived, from the link as written.
    links: list[str] = field(default_factory=list)
    # The first SKIPPED_KEPT items left out as unusable, and how many there were.
    skipped: list[Skipped] = field(default_factory=list)
    unusable: int = 0
    repeats: int = 0
    # Articles the poll had no room for.
    beyond: int = 0
    warning: str | None = None
    # Seconds between polls the feed itself asks for (<ttl>, sy:updatePeriod).
    requested_interval: float | None = None


# What crosses from the parse's process to the service's is pickled there and read on
# the event loop: a feed of 80,000 items took 5.6 s and 240 MB of it as whole events,
# when its poll looked at one. So the parse keeps what the poll reads.
SKIPPED_KEPT = 20
# The longest guid kept as it is in an item's key: with the longest canonical URL
# (urls.MAX_URL_LENGTH bytes, percent-encoded: 24,576) under Elasticsearch's 32,766.
GUID_BYTES = 8_000


def parse_feed(
    content: bytes, source: Source, fetched_at: datetime, room: int | None = None
) -> FeedParse:
    """The feed's articles; with `room`, only the first that many distinct ones."""
    # Always a stream: given bytes or str, feedparser opens a body that looks like a
    # path (`/dev/zero`, `/etc/...`) as a local file, or fetches one that looks like a URL.
    content = feed_with_few_attributes(_CHARACTER_REFERENCE.sub(_character, content))
    try:
        parsed: Any = feedparser.parse(
            io.BytesIO(content), sanitize_html=False, resolve_relative_uris=False
        )
    # What feedparser raises on what it cannot read (a wide encoding's references the
    # bytes pattern above cannot see; the worker hands it UTF-8): this feed's error.
    except (OverflowError, ValueError, UnicodeError) as exc:
        msg = f"not a readable RSS/Atom feed: {type(exc).__name__}: {exc}"
        raise FeedError(msg) from exc
    entries: list[Any] = list(parsed.entries)
    warning = str(parsed.get("bozo_exception")) if parsed.get("bozo") else None
    if not entries and not parsed.feed.get("title"):
        msg = f"not a readable RSS/Atom feed: {warning or 'no channel and no items'}"
        raise FeedError(msg)

    result = FeedParse(
        title=normalize_whitespace(parsed.feed.get("title", "")),
        warning=warning,
        requested_interval=requested_interval(parsed.feed),
    )
    link_counts = Counter(_link(entry) for entry in entries)
    feed_language = language_code(parsed.feed.get("language")) or source.language
    keys: set[str] = set()
    for position, entry in enumerate(entries):
        try:
            event = _to_event(entry, source, fetched_at, feed_language, link_counts)
        # ValueError: an item the contract refuses (pydantic's ValidationError is one)
        # is that item's, never the feed's: it failed every poll, every item lost.
        except (_SkipError, ValueError) as skip:
            result.unusable += 1
            if len(result.skipped) < SKIPPED_KEPT:
                result.skipped.append(Skipped(position, str(skip)))
            continue
        if event.idempotency_key in keys:
            result.repeats += 1
            continue
        keys.add(event.idempotency_key)
        if room is not None and len(result.events) >= room:
            result.beyond += 1
        else:
            result.events.append(event)
            result.links.append(_link(entry))
    return result


_PERIODS = {
    "hourly": 3600.0,
    "daily": 86400.0,
    "weekly": 7 * 86400.0,
    "monthly": 30 * 86400.0,
    "yearly": 365 * 86400.0,
}


def requested_interval(channel: Any) -> float | None:
    """The slowest polling the feed asks for: RSS <ttl> (minutes) or the syndication
    module's updatePeriod / updateFrequency; None when it asks for nothing readable."""
    asked = []
    ttl = _count(channel.get("ttl"))
    if ttl:
        asked.append(ttl * 60.0)
    period = _PERIODS.get(str(channel.get("sy_updateperiod") or "").strip().lower())
    if period:
        asked.append(period / max(1, _count(channel.get("sy_updatefrequency")) or 1))
    return max(asked, default=None)


_COUNT = re.compile(r"[0-9]{1,9}")


def _count(value: Any) -> int | None:
    """A whole number as feeds write it. ASCII digits only, and not too many:
    `²` passes str.isdigit() but not int(), and a 5,000-digit ttl is no float."""
    text = str(value or "").strip()
    return int(text) if _COUNT.fullmatch(text) else None


class _SkipError(Exception):
    pass


def _discriminator(guid: str | None, title: str) -> str:
    """What tells apart the items of one link: the guid, or a digest of the title, or
    of a guid so long that the key would pass the 32,766 bytes Elasticsearch takes in a
    keyword (a canonical URL of up to 24,576, and this; every item a dead letter)."""
    if guid and len(guid.encode(errors="replace")) <= GUID_BYTES:
        return guid
    return hashlib.sha256((guid or title).encode(errors="replace")).hexdigest()[:16]


def _to_event(
    entry: Any,
    source: Source,
    fetched_at: datetime,
    feed_language: str | None,
    link_counts: Counter[str],
) -> ArticleEvent:
    link = _link(entry)
    if not is_web_url(link):
        raise _SkipError(f"no usable link ({link!r})")
    title = _text(entry, "title")
    summary = _text(entry, "summary")
    if not title:
        raise _SkipError("no title")
    body = "\n\n".join(
        text for part in entry.get("content", []) if (text := html_to_text(part.get("value", "")))
    )
    canonical = canonicalize_url(link)
    if link_counts[link] > 1 or _is_home_page(canonical):
        # The link names a page of many articles: key the item by its guid, or
        # its title, the same way in every poll whatever else the feed holds.
        canonical = f"{canonical}#item={_discriminator(entry.get('id'), title)}"
    # Keyed above by the whole title, as before it was bounded: the same key as ever.
    shown = clipped(title, TITLE_CHARS)
    return ArticleEvent(
        source=source.name,
        url=web_url(link),
        canonical_url=web_url(canonical),
        idempotency_key=source_key(canonical),
        title=shown,
        summary=clipped(summary, SUMMARY_CHARS),
        body=body or summary,
        authors=labels(_authors(entry)),
        published_at=_date(entry, source, fetched_at),
        language=language_code(entry.get("language")) or feed_language,
        tags=article_tags(source.tags, _tags(entry)),
        countries=list(source.countries),
        fetched_at=fetched_at,
        content_hash=content_hash(shown, body or summary),
        extraction="feed",
    )


# feedparser gives a field as None, not leaves it out, when its element was closed by
# another's end tag (`<description>x</content:encoded>`, `<author>x</name>`).
def _link(entry: Any) -> str:
    return (entry.get("link") or "").strip()


def _text(entry: Any, field: str) -> str:
    """A title or summary as text. feedparser has already decoded a plain-text
    one: parsing it as HTML again would eat a literal `<div>` in it."""
    detail = entry.get(f"{field}_detail") or {}
    value = entry.get(field) or ""
    if detail.get("type") == "text/plain":
        return normalize_whitespace(value)
    return html_to_text(value)


def _is_home_page(url: str) -> bool:
    parts = urlsplit(url)
    return parts.path in ("", "/") and not parts.query


def _published(entry: Any) -> Any:
    # Plain dict lookups: feedparser's own mapping of `updated_parsed` onto
    # `published_parsed` is deprecated and warns.
    return dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")


def _date(entry: Any, source: Source, fetched_at: datetime) -> datetime | None:
    raw = str(dict.get(entry, "published") or dict.get(entry, "updated") or "").strip()
    # Read here first: feedparser reads a date without a zone, or with a zone's name
    # after ISO 8601, as UTC (or not at all in RFC 822); the source means its own time.
    if raw and (moment := parse_date(raw, source.zone, fetched_at)) is not None:
        return moment
    value = _published(entry)
    return None if value is None else from_utc_struct(value, fetched_at)


def _authors(entry: Any) -> list[str]:
    names = [normalize_whitespace(a.get("name") or "") for a in entry.get("authors", [])]
    return [name for name in names if name]


def _tags(entry: Any) -> list[str]:
    terms = (normalize_whitespace(t.get("term") or "") for t in entry.get("tags", []))
    return [term for term in terms if term]
