"""Stream entries to bulk actions, or to the reason they cannot be indexed. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from services.indexer.documents import (
    ArticleDocument,
    BulkAction,
    QuoteDocument,
    article_action,
    quote_action,
)
from services.indexer.mappings import IndexNames
from shared.streams import DATA_FIELD, Streams


@dataclass
class Entry:
    stream: str
    entry_id: str
    fields: dict[bytes, bytes]
    deliveries: int = 1

    @property
    def key(self) -> str:
        return f"{self.stream}/{self.entry_id}"

    @property
    def size(self) -> int:
        """Bytes on the wire: what a bulk request of this entry will roughly weigh."""
        return sum(len(k) + len(v) for k, v in self.fields.items())


@dataclass(frozen=True)
class Invalid:
    error_class: str
    message: str


def decode_entry(entry: Entry, streams: Streams, names: IndexNames) -> BulkAction | Invalid:
    try:
        return _decode(entry, streams, names)
    # Whatever a malformed entry makes go wrong, it must not stop the batch.
    except Exception as exc:
        return Invalid(type(exc).__name__, f"could not decode the entry: {exc}")


def _decode(entry: Entry, streams: Streams, names: IndexNames) -> BulkAction | Invalid:
    payload = entry.fields.get(DATA_FIELD)
    if payload is None:
        found = sorted(k.decode(errors="replace") for k in entry.fields)
        return Invalid("MissingDataField", f"entry has no __data__ field (fields: {found})")
    if entry.stream == streams.articles:
        try:
            return article_action(ArticleDocument.model_validate_json(payload), names.articles)
        except ValidationError as exc:
            return Invalid("ValidationError", _describe(exc, "ArticleEvent"))
    if entry.stream == streams.quotes:
        try:
            return quote_action(QuoteDocument.model_validate_json(payload), names.quotes)
        except ValidationError as exc:
            return Invalid("ValidationError", _describe(exc, "QuoteEvent"))
    return Invalid("UnknownStream", f"no event type is consumed from {entry.stream!r}")


def _describe(exc: ValidationError, contract: str) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"]) or "(document)"
        parts.append(f"{where}: {error['msg']}")
    return f"{contract}: " + "; ".join(parts)
