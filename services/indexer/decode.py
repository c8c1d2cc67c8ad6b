"""Stream entries to bulk actions, or to the reason they cannot be indexed. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from services.indexer.documents import BulkAction, article_action, quote_action
from shared.consumer import Entry
from shared.events import SCHEMA_VERSION
from shared.index import ArticleDocument, IndexNames, QuoteDocument
from shared.streams import DATA_FIELD, Streams

_SCHEMA_VERSION = re.compile(rb'"schema_version"\s*:\s*(-?\d{1,12})')


@dataclass(frozen=True)
class Invalid:
    error_class: str
    message: str


def decode_entry(entry: Entry, streams: Streams, names: IndexNames) -> BulkAction | Invalid:
    try:
        return _decode(entry, streams, names)
    # Whatever a malformed entry makes go wrong (the analysis included, RecursionError
    # and MemoryError too), it costs that entry a dead letter, never the batch. The
    # type is in the message as well: a MemoryError has no message of its own.
    except Exception as exc:
        return Invalid(
            type(exc).__name__, f"could not decode the entry: {type(exc).__name__}: {exc}"
        )


def _decode(entry: Entry, streams: Streams, names: IndexNames) -> BulkAction | Invalid:
    payload = entry.fields.get(DATA_FIELD)
    if payload is None:
        found = sorted(k.decode(errors="replace") for k in entry.fields)
        return Invalid("MissingDataField", f"entry has no __data__ field (fields: {found})")
    version = _SCHEMA_VERSION.search(payload[:4096])
    if version is not None and int(version.group(1)) != SCHEMA_VERSION:
        return Invalid(
            "UnknownSchemaVersion",
            f"schema_version {int(version.group(1))} is not one this indexer reads "
            f"({SCHEMA_VERSION}); replay the dead letter after upgrading",
        )
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
