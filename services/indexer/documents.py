"""Events to Elasticsearch bulk actions: pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.events import ArticleEvent, QuoteEvent


@dataclass(frozen=True)
class BulkAction:
    index: str
    doc_id: str
    version: int
    source: dict[str, Any]

    def operations(self) -> tuple[dict[str, Any], dict[str, Any]]:
        # External versioning: a replay of an older event is refused with a 409
        # instead of overwriting a newer one.
        header = {"index": {"_index": self.index, "_id": self.doc_id,
                            "version": self.version, "version_type": "external"}}
        return header, self.source


def article_action(event: ArticleEvent, alias: str) -> BulkAction:
    source = event.model_dump(mode="json")
    source["title_suggest"] = {"input": [event.title]}
    return BulkAction(alias, event.idempotency_key, event.version, source)


def quote_action(event: QuoteEvent, alias: str) -> BulkAction:
    source = event.model_dump(mode="json")
    source["pair"] = f"{event.base}/{event.quote}"
    source["rate_value"] = float(event.rate)
    source["change_pct_value"] = (
        float(event.change_pct) if event.change_pct is not None else None
    )
    return BulkAction(alias, event.idempotency_key, event.version, source)
