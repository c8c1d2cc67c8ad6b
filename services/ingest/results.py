"""What one poll of a source came to: what it published, what it left out and why.

Also which of a document's items the poll looks at: the first of each article
(first_of_each) and no more than the source's limit (PollResult.within_limit).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from services.ingest.kinds import Kind
from services.ingest.state import Novelty

T = TypeVar("T")


@dataclass
class PollResult:
    source: str
    published: int = 0
    error: str | None = None
    kind: Kind | None = None
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    not_modified: bool = False
    feeds: list[str] = field(default_factory=list)
    requested_interval: float | None = None  # what a feed asked for (<ttl>, sy:updatePeriod)
    # Items of the document not looked at in this poll, by why: "limit" (past the
    # source's max_items), "duplicate" (listed again), "unusable" (no usable link
    # or title), "before since" (older than a backfill's --since).
    left_out: Counter[str] = field(default_factory=Counter)
    # Children of a sitemap index: fetched and read, not fetched because unchanged
    # (or resting after 304s), and left for a later poll (the fetch budget, the limit).
    sitemaps_read: int = 0
    sitemaps_unchanged: int = 0
    sitemaps_deferred: int = 0

    @property
    def seen(self) -> int:
        """Articles looked at in this poll, whatever came of them."""
        return self.new + self.updated + self.unchanged + self.failed

    def count(self, outcome: Novelty | str) -> None:
        name = str(outcome)
        setattr(self, name, getattr(self, name) + 1)
        if outcome in (Novelty.NEW, Novelty.UPDATED):
            self.published += 1

    @property
    def sitemaps(self) -> dict[str, int]:
        return {
            "sitemaps_read": self.sitemaps_read,
            "sitemaps_unchanged": self.sitemaps_unchanged,
            "sitemaps_deferred": self.sitemaps_deferred,
        }

    def full(self, max_items: int | None) -> bool:
        return max_items is not None and self.seen >= max_items

    def leave_out(self, reason: str, count: int = 1) -> None:
        if count > 0:
            self.left_out[reason] += count

    def room(self, max_items: int | None) -> int | None:
        """How many more articles this poll may look at (None: no limit)."""
        return None if max_items is None else max(0, max_items - self.seen)

    def within_limit(self, items: list[T], max_items: int | None) -> list[T]:
        """The first of `items` that still fit in `max_items` articles looked at
        in this poll (all of them for None); the rest are left out for the limit."""
        room = self.room(max_items)
        kept = items if room is None else items[:room]
        self.leave_out("limit", len(items) - len(kept))
        return kept

    def summary(self) -> str:
        """One line for people: what the poll published, and what it left out and why."""
        if self.error is not None:
            return f"{self.source}: failed: {self.error}"
        if self.not_modified:
            return f"{self.source}: not modified since the last poll"
        left = self.left_out + Counter({"failed": self.failed})  # + drops the zeros
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(left.items()))
        line = (
            f"{self.source} ({self.kind}): {self.published} articles published "
            f"({self.new} new, {self.updated} updated), {self.unchanged} unchanged, "
            f"{left.total()} items left out" + (f" ({reasons})" if reasons else "")
        )
        if any(self.sitemaps.values()):
            line += (
                f"; child sitemaps: {self.sitemaps_read} read, {self.sitemaps_unchanged} "
                f"unchanged, {self.sitemaps_deferred} left for a later poll"
            )
        return line


def first_of_each(items: Iterable[T], key: Callable[[T], str]) -> tuple[list[T], int]:
    """The first item of each key, in order, and how many repeats there were."""
    firsts: dict[str, T] = {}
    repeats = 0
    for item in items:
        if firsts.setdefault(key(item), item) is not item:
            repeats += 1
    return list(firsts.values()), repeats
