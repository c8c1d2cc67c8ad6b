"""Hostile events shared by the suite's function and service tests."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.events import ArticleEvent, content_hash

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
# Caravan's own, before: folding lost a character per pass (24 s for 78 KiB of it).
ONE_LONG_WORD = "k" * 1_000_000 + "h"
# Deeper than any JSON parser here recurses.
DEEP_NEST = b"[" * 200_000
# As deep, but fewer values than the indexer refuses unparsed: the parser's own bound.
NEST_UNDER_VALUES = b"[" * 50_000


def article(body: str, path: str = "a") -> ArticleEvent:
    url = f"https://site.example/{path}"
    return ArticleEvent(
        source="hostile",
        url=url,
        canonical_url=url,
        title="Hostile",
        body=body,
        fetched_at=NOW,
        content_hash=content_hash("Hostile", body),
    )
