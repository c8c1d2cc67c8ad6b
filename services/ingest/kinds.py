"""What a fetched document is, from its first bytes; pure."""

from __future__ import annotations

from typing import Literal

from services.ingest.sitemaps import is_sitemap

Kind = Literal["feed", "sitemap", "listing", "article"]
DocumentKind = Literal["feed", "sitemap", "html"]

_FEED_MARKERS = (b"<rss", b"<feed", b"<rdf:rdf", b"<channel")
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body")


def document_kind(content: bytes) -> DocumentKind:
    """Sitemap, feed or HTML page. Anything else is handed to the feed parser,
    whose error says clearly that it is not a feed."""
    # A UTF-16 or 32 document's markup is its ASCII with NULs between: read as it came,
    # a UTF-16 sitemap or page was taken for a feed, and its source never read.
    head = content[:8192].replace(b"\x00", b"")[:2048]
    if is_sitemap(head):
        return "sitemap"
    head = head.lower()
    if any(marker in head for marker in _FEED_MARKERS):
        return "feed"
    if any(marker in head for marker in _HTML_MARKERS):
        return "html"
    return "feed"
