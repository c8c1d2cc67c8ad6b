"""How many bulk requests the indexer keeps in flight: additive increase, multiplicative
decrease (AIMD) on the cluster's answers. Pure: answers in, a limit out.

Elasticsearch's advice for bulk clients is to add concurrency while throughput
grows and to back off on 429s or when requests slow down. So:

- an answer about as fast per byte as the fastest seen lately adds about one
  request per round (1 / limit per answer), up to the ceiling
  (`CARAVAN_INDEXER_MAX_IN_FLIGHT`, which therefore still bounds what the
  indexer holds in memory: at most (ceiling + 1) × batch entries, one batch
  being decoded ahead);
- an answer `slowdown` times slower per byte than that halves the limit: the
  cluster is queueing, more requests would only wait longer. Once per round,
  as TCP cuts once per round trip: the answers to requests sent before the cut
  say nothing about the new limit, so they are not judged;
- a cluster fault (429, 5xx, unreachable: a hold) drops the limit to one.

Small requests (a trickle, not a backlog) say little about the cluster's
capacity, so they leave the limit as it is.
"""

from __future__ import annotations

# Below this a request's time is mostly fixed cost: no verdict on the cluster's load.
JUDGED_BYTES = 256 * 1024
# The fastest rate seen fades by this factor per answer, so that a cluster that got
# slower for good (more load from elsewhere, a node fewer) sets a new baseline.
BASELINE_FADE = 1.05


class AdaptiveLimit:
    def __init__(self, ceiling: int, *, start: int = 1, slowdown: float = 2.0) -> None:
        self.ceiling = ceiling
        self._limit = float(max(1, min(start, ceiling)))
        self._slowdown = slowdown
        self._fastest: float | None = None  # seconds per byte
        self._unjudged = 0  # answers still due to requests sent before the last cut

    @property
    def limit(self) -> int:
        """Requests that may be in flight now: 1 to `ceiling`."""
        return int(self._limit)

    def answered(self, seconds: float, size: int) -> None:
        """A bulk request of `size` bytes was answered in `seconds`."""
        if size < JUDGED_BYTES:
            return
        rate = seconds / size
        baseline = rate if self._fastest is None else min(rate, self._fastest * BASELINE_FADE)
        self._fastest = baseline
        if self._unjudged > 0:
            self._unjudged -= 1
        elif rate > baseline * self._slowdown:
            self._unjudged = self.limit - 1  # the others in flight when this one came back
            self._limit = max(1.0, self._limit / 2)
        else:
            self._limit = min(float(self.ceiling), self._limit + 1 / self._limit)

    def refused(self) -> None:
        """The cluster could not take a request (a hold): one at a time from here."""
        self._unjudged = self.limit - 1
        self._limit = 1.0
