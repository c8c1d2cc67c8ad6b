"""Holding for the cluster: the state the whole indexer reads nothing new in."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from services.indexer import metrics
from shared.consumer import Clock

log = structlog.get_logger(__name__)


# Who holds when no one is named: the writer, for the cluster's refusals.
CLUSTER = "cluster"


class Hold:
    """Whether the indexer is holding, since when, and why.

    Each holder enters and releases its own part: the writer for the cluster (entered
    by any batch that meets a cluster fault, released by the next bulk request the
    cluster accepts), and each settling command Redis refuses (services/indexer/
    ledger.py), released when Redis takes it. The hold lasts while any part does: one
    holder's release must not end another's. While it lasts, the consumer reads
    nothing new, /readyz is not ready with the latest reason, and the
    `caravan_indexer_holding` gauge is 1 (the alert rule fires on it).
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._reasons: dict[object, str] = {}
        self.since: float | None = None
        self._released = asyncio.Event()
        self._released.set()

    @property
    def active(self) -> bool:
        return bool(self._reasons)

    @property
    def reason(self) -> str | None:
        """The latest reason of those holding."""
        return next(reversed(self._reasons.values()), None)

    def enter(self, reason: str, holder: object = CLUSTER) -> None:
        if self.since is None:
            self.since = self._clock()
            if holder is CLUSTER:
                log.warning("holding: the cluster cannot take writes", reason=reason)
            else:  # the ledger's: an operator must look at Redis, not the cluster
                log.warning("holding: redis cannot settle entries", reason=reason)
        self._reasons.pop(holder, None)
        self._reasons[holder] = reason
        self._released.clear()
        metrics.HOLDING.set(1)

    def release(self, holder: object = CLUSTER) -> None:
        self._reasons.pop(holder, None)
        if self._reasons:
            return
        if self.since is not None:
            log.info(
                "hold released: writing and settling again",
                held_seconds=round(self._clock() - self.since, 1),
            )
        self.since = None
        self._released.set()
        metrics.HOLDING.set(0)

    async def wait_released(self, stopping: asyncio.Event) -> None:
        """Return once the hold is released, or stop is asked."""
        released = asyncio.ensure_future(self._released.wait())
        stopped = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({released, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (released, stopped):
            task.cancel()

    def describe(self) -> dict[str, Any] | None:
        if self.reason is None or self.since is None:
            return None
        return {"reason": self.reason, "for_seconds": round(self._clock() - self.since, 1)}
