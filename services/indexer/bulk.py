"""Reading a bulk response item by item: what was stored, what to hold, what to refuse.

The verdicts follow the failure policy in services/indexer/failures.py.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from elastic_transport import SerializationError

from services.indexer.documents import BulkAction
from services.indexer.failures import (
    Fault,
    cluster_state,
    describe_error,
    larger_than_the_cluster_takes,
    status_fault,
    too_heavy_with_its_request,
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
    # Held only for the weight of the request that carried it (see
    # too_heavy_with_its_request): sent again in smaller requests, it may fit.
    narrow: bool = False

    @property
    def done(self) -> bool:
        return self.outcome in (ItemOutcome.STORED, ItemOutcome.STALE)


def classify_item(item: dict[str, Any], *, request_bytes: int = 0) -> ItemResult:
    """One item of the answer to a bulk request of `request_bytes`."""
    ((operation, result),) = item.items()
    status = int(result.get("status", 500))
    error = result.get("error")
    if error is None and status < 300:
        return ItemResult(ItemOutcome.STORED, status)
    if operation == "delete" and error is None and status == 404:
        # Nothing under that id (deleted already, or never indexed): nothing to remove.
        # A missing index is a 404 with an error, the cluster's.
        return ItemResult(ItemOutcome.STORED, status)
    reason = describe_error(error) if error is not None else f"HTTP {status}"
    if status == 409:
        return ItemResult(ItemOutcome.STALE, status, reason)
    if larger_than_the_cluster_takes(status, reason):
        return ItemResult(ItemOutcome.REJECTED, status, reason)
    if too_heavy_with_its_request(status, reason, request_bytes):
        return ItemResult(ItemOutcome.HOLD, status, reason, narrow=True)
    if status_fault(status) is Fault.CLUSTER or cluster_state(error):
        return ItemResult(ItemOutcome.HOLD, status, reason)
    return ItemResult(ItemOutcome.REJECTED, status, reason)


# A document stored, or a newer one there already: what it supersedes may go.
_DONE = (ItemOutcome.STORED, ItemOutcome.STALE)


def superseding(actions: Sequence[BulkAction], results: Sequence[ItemResult]) -> list[int]:
    """The positions of the actions whose superseded documents are to be deleted now:
    those whose own document is done. Never in the request that stores it: refused or
    held there while its delete went through, the article was in neither place."""
    return [
        position
        for position, (action, result) in enumerate(zip(actions, results, strict=True))
        if action.supersedes and result.outcome in _DONE
    ]


def still_published(found: Mapping[str, Any], published: int) -> bool | None:
    """Whether a superseded document, as a multi-get found it, is still the version the
    article was published at there: only then is it this article's to delete. Another
    version may be another article's (a page may declare its address), or this one's
    never stored. None there is nothing to lose, and the delete's tombstone refuses the
    article's older copies; None when the cluster did not say (an error: held)."""
    if "error" in found:
        return None
    return not found.get("found") or found.get("_version") == published


def multi_get_docs(response: object, count: int) -> list[dict[str, Any]]:
    """The `count` documents of the answer to a multi-get, in order; SerializationError
    (held) for a body that is not one, as classify_response does for a bulk answer."""
    docs = response.get("docs") if isinstance(response, dict) else None
    if not isinstance(docs, list) or len(docs) != count:
        msg = f"not the answer to a multi-get of {count} documents"
        raise SerializationError(msg)
    if not all(isinstance(doc, dict) for doc in docs):
        msg = "a multi-get answer whose documents are not objects"
        raise SerializationError(msg)
    return docs


def classify_response(
    response: object, actions: int, *, request_bytes: int = 0
) -> list[ItemResult]:
    """Each of `actions` items of the answer to a bulk request of `request_bytes`,
    classified in order.

    SerializationError (held, as any unreadable answer) for a body that is not the
    answer to a bulk request of `actions` (a proxy's page sent with a 200, an answer
    cut short): read as one, its items would be matched to the wrong entries.
    """
    items = response.get("items", []) if isinstance(response, dict) else None
    if not isinstance(items, list) or len(items) != actions:
        msg = f"not the answer to a bulk request of {actions} actions"
        raise SerializationError(msg)
    if not all(
        isinstance(item, dict) and len(item) == 1 and isinstance(next(iter(item.values())), dict)
        for item in items
    ):
        msg = "a bulk answer whose items are not one operation's result each"
        raise SerializationError(msg)
    return [classify_item(item, request_bytes=request_bytes) for item in items]
