"""Events to Elasticsearch bulk actions: pure functions.

An index document is the event plus a few fields derived for search. They are
declared as computed fields of pydantic subclasses of the events, so a
document is validated and serialized to JSON in one pass of pydantic's Rust
core, and handed to the bulk request as ready-made text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError, computed_field

from shared.events import ArticleEvent, QuoteEvent
from shared.language.analysis import fold_text, stem_text


class ArticleDocument(ArticleEvent):
    @computed_field  # type: ignore[prop-decorator]
    @property
    def title_suggest(self) -> dict[str, list[str]]:
        return {"input": [self.title]}

    # Word forms and one script for search (shared/language), for the `stem.*` and
    # `fold.*` fields: Elasticsearch's minimal distribution cannot make them.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def stem(self) -> dict[str, str]:
        return {"title": stem_text(self.title), "summary": stem_text(self.summary),
                "body": stem_text(self.body)}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fold(self) -> dict[str, str]:
        return {"title": fold_text(self.title), "summary": fold_text(self.summary),
                "body": fold_text(self.body)}


class QuoteDocument(QuoteEvent):
    @computed_field  # type: ignore[prop-decorator]
    @property
    def pair(self) -> str:
        return f"{self.base}/{self.quote}"

    # The exact decimals stay strings; these doubles are for sorting and ranges.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate_value(self) -> float:
        return float(self.rate)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def change_pct_value(self) -> float | None:
        return None if self.change_pct is None else float(self.change_pct)


@dataclass(frozen=True)
class BulkAction:
    index: str
    doc_id: str
    version: int
    document: str
    """The document's JSON."""
    trace: dict[str, str] | None = None
    """The publisher's trace context (traceparent, tracestate), when it sent one."""

    def operations(self) -> tuple[dict[str, Any], str]:
        # External versioning: a replay of an older event is refused with a 409
        # instead of overwriting a newer one.
        header = {"index": {"_index": self.index, "_id": self.doc_id,
                            "version": self.version, "version_type": "external"}}
        return header, self.document


def article_action(event: ArticleEvent, alias: str) -> BulkAction:
    document = event if isinstance(event, ArticleDocument) else ArticleDocument.model_validate(
        event.model_dump())
    return BulkAction(alias, document.idempotency_key, document.version,
                      document.model_dump_json(), _trace(document))


def stored_source(source: dict[str, Any], alias_is_articles: bool) -> str:
    """A stored document's JSON for a copy (`caravan reindex`), derived fields made anew.

    An article indexed before a derived field existed gains it; one that no longer
    validates is copied as it is.
    """
    if alias_is_articles:
        try:
            return ArticleDocument.model_validate(source).model_dump_json()
        except ValidationError:
            pass
    return json.dumps(source)


def quote_action(event: QuoteEvent, alias: str) -> BulkAction:
    document = event if isinstance(event, QuoteDocument) else QuoteDocument.model_validate(
        event.model_dump())
    return BulkAction(alias, document.idempotency_key, document.version,
                      document.model_dump_json(), _trace(document))


def _trace(event: ArticleEvent | QuoteEvent) -> dict[str, str] | None:
    if event.traceparent is None:
        return None
    return {"traceparent": event.traceparent, "tracestate": event.tracestate or ""}
