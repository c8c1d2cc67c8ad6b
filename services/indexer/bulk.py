"""Reading a bulk response item by item: what was stored, what to hold, what to refuse.

The verdicts follow the failure policy in services/indexer/failures.py.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from services.indexer.failures import (
    Fault,
    describe_error,
    larger_than_the_cluster_takes,
    status_fault,
)


class ItemOutcome(enum.Enum):
    STORED = "stored"
    STALE = "stale"
    """A version conflict: the index already holds this version or a newer one."""
    HOLD = "hold"
    """The cluster's fault (429, 5xx, a block, a missing privilege): try again later."""
    REJECTED = "rejected"
    """The document itself is refused (mapping or parse error): retrying cannot help."""


@dataclass(frozen=True)
class ItemResult:
    outcome: ItemOutcome
    status: int
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.outcome in (ItemOutcome.STORED, ItemOutcome.STALE)


def classify_item(item: dict[str, Any]) -> ItemResult:
    (result,) = item.values()
    status = int(result.get("status", 500))
    error = result.get("error")
    if error is None and status < 300:
        return ItemResult(ItemOutcome.STORED, status)
    reason = describe_error(error) if error is not None else f"HTTP {status}"
    if status == 409:
        return ItemResult(ItemOutcome.STALE, status, reason)
    if larger_than_the_cluster_takes(status, reason):
        return ItemResult(ItemOutcome.REJECTED, status, reason)
    if status_fault(status) is Fault.CLUSTER:
        return ItemResult(ItemOutcome.HOLD, status, reason)
    return ItemResult(ItemOutcome.REJECTED, status, reason)


def classify_response(response: dict[str, Any]) -> list[ItemResult]:
    return [classify_item(item) for item in response.get("items", [])]
