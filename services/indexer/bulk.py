"""Reading a bulk response item by item: what was stored, what to retry, what to refuse."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Outcome(enum.Enum):
    STORED = "stored"
    STALE = "stale"
    """A version conflict: the index already holds this version or a newer one."""
    RETRY = "retry"
    """Elasticsearch is overloaded or failing (429, 5xx): try again later."""
    REJECTED = "rejected"
    """The document itself is refused (mapping or parse error): retrying cannot help."""


@dataclass(frozen=True)
class ItemResult:
    outcome: Outcome
    status: int
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.outcome in (Outcome.STORED, Outcome.STALE)


def classify_item(item: dict[str, Any]) -> ItemResult:
    (result,) = item.values()
    status = int(result.get("status", 500))
    error = result.get("error")
    if error is None and status < 300:
        return ItemResult(Outcome.STORED, status)
    reason = _reason(error) if error is not None else f"HTTP {status}"
    if status == 409:
        return ItemResult(Outcome.STALE, status, reason)
    if status == 429 or status >= 500:
        return ItemResult(Outcome.RETRY, status, reason)
    return ItemResult(Outcome.REJECTED, status, reason)


def classify_response(response: dict[str, Any]) -> list[ItemResult]:
    return [classify_item(item) for item in response.get("items", [])]


def _reason(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    return f"{text} (caused by {_reason(cause)})" if cause else text
