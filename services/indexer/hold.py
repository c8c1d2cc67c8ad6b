"""Holding for the cluster: the state the whole indexer reads nothing new in."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from services.indexer import metrics
from shared.consumer import Clock

log = structlog.get_logger(__name__)


class Hold:
    """Whether the indexer is holding for the cluster, since when, and why.

    Set by any batch that meets a cluster fault, cleared by the next bulk
    request the cluster accepts; and while Redis refuses to settle entries
    (services/indexer/ledger.py), cleared when it takes them. While set, the
    consumer reads nothing new, /readyz is not ready with the reason, and the
    `caravan_indexer_holding` gauge is 1 (the alert rule fires on it).
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.reason: str | None = None
        self.since: float | None = None
        self._released = asyncio.Event()
        self._released.set()

    @property
    def active(self) -> bool:
        return self.reason is not None

    def enter(self, reason: str) -> None:
        if self.since is None:
            self.since = self._clock()
            log.warning("holding: the cluster cannot take writes", reason=reason)
        self.reason = reason
        self._released.clear()
        metrics.HOLDING.set(1)

    def release(self) -> None:
        if self.since is not None:
            log.info(
                "hold released: the cluster takes writes again",
                held_seconds=round(self._clock() - self.since, 1),
            )
        self.reason = None
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
