"""Where a poll stands in a sitemap index: how far back it reads, how many fetches are left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.ingest.dates import parse_date
from services.ingest.sitemaps import SitemapEntry
from services.ingest.sources import Source


@dataclass
class SitemapWalk:
    """One poll's way through a sitemap, its children and theirs."""

    since: datetime | None  # entries dated earlier are left out (backfill)
    now: datetime  # when the poll started: the children it fetches were visited then
    budget: int  # child sitemaps this poll may still fetch

    @property
    def started(self) -> float:
        return self.now.timestamp()

    def recent(self, entry: SitemapEntry, source: Source) -> bool:
        moment = parse_date(entry.date, source.zone, self.now)
        return self.since is None or moment is None or moment >= self.since
