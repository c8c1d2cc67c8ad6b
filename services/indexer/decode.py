"""Stream entries to bulk actions, or to the reason they cannot be indexed. Pure."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Literal, cast, overload

from pydantic import ValidationError

from services.indexer.documents import (
    BulkAction,
    analysed_article_action,
    article_action,
    quote_action,
)
from services.indexer.grouping import groups
from shared.consumer import Entry
from shared.events import MAX_EVENT_BYTES, SCHEMA_VERSION, ArticleEvent
from shared.index import ArticleDocument, IndexNames, QuoteDocument
from shared.language import analysis
from shared.streams import DATA_FIELD, Streams


@dataclass(frozen=True)
class Invalid:
    error_class: str
    message: str


# JSON values outside strings at most. Parsed, 16 MiB of "{}," were 5.6 million objects
# and 940 MB, past a 512 MiB container's limit: a crash loop, then every entry of the
# batch dead-lettered for its deliveries. An event has tens; a long list of tags some
# thousands.
MAX_VALUES = 100_000
# Field names a letter's reason lists of an entry without a payload.
NAMES_SHOWN = 20
# Escapes out first, then strings: each pattern linear, where one pattern for a string
# with its escapes scanned a long unterminated one again from every escaped quote.
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')


def payload_refusal(payload: bytes) -> Invalid | None:
    """Why a payload is not parsed at all: its size, or more values than an event has."""
    if len(payload) > MAX_EVENT_BYTES:
        return Invalid("TooLarge", f"payload of {len(payload)} bytes, over {MAX_EVENT_BYTES}")
    if len(payload) <= MAX_VALUES:
        return None  # too short to hold so many
    # Strings taken out first (their commas are text), in one linear pass.
    rest = _STRING.sub(b"", _ESCAPE.sub(b"", payload))
    values = rest.count(b",") + rest.count(b"[") + rest.count(b"{")
    if values > MAX_VALUES:
        return Invalid("TooManyValues", f"payload of about {values} JSON values, over {MAX_VALUES}")
    return None


# Characters analysed in one call at most: its tables of the distinct chunks and words
# weigh up to about 55 times the text, and twelve articles of 1.1 MB of distinct words
# took 790 MB at once (276 MB so). A thousand common articles are a call or a few; the
# CPU per article measured the same (1,000-article batches of the indexer bench's).
ANALYSE_CHARS = 1_000_000


def _chars(event: ArticleEvent) -> int:
    return len(event.title) + len(event.summary) + len(event.body)


def decode_entries(
    entries: Sequence[Entry], streams: Streams, names: IndexNames
) -> list[BulkAction | Invalid]:
    """decode_entry of each entry, the same results, made for the batch at once.

    The articles are validated one by one and their texts analysed together
    (`analysis.analyse`: each distinct chunk and word of the batch once); an entry
    whose document cannot be made so (the analysis of the batch raising included) is
    decoded alone by decode_entry, so that it costs that entry a dead letter, with the
    reason decode_entry gives, never the batch.
    """
    decoded: list[BulkAction | Invalid | ArticleEvent] = []
    for entry in entries:
        try:
            decoded.append(_decode(entry, streams, names, batched=True))
        except Exception as exc:
            decoded.append(_failed(exc))
    articles = [n for n, result in enumerate(decoded) if isinstance(result, ArticleEvent)]
    if not articles:
        return cast("list[BulkAction | Invalid]", decoded)
    events = cast("list[ArticleEvent]", [decoded[n] for n in articles])
    try:
        analysed = [
            fields
            for group in groups(events, _chars, ANALYSE_CHARS)
            for fields in analysis.analyse([t for e in group for t in (e.title, e.summary, e.body)])
        ]
    except Exception:
        analysed = None
    for i, (n, event) in enumerate(zip(articles, events, strict=True)):
        action = None
        if analysed is not None:
            # Not made so: decoded alone below, whose error is the dead letter's reason.
            with contextlib.suppress(Exception):
                action = analysed_article_action(event, analysed[3 * i : 3 * i + 3], names.articles)
        decoded[n] = action or decode_entry(entries[n], streams, names)
    return cast("list[BulkAction | Invalid]", decoded)


def decode_entry(entry: Entry, streams: Streams, names: IndexNames) -> BulkAction | Invalid:
    try:
        return _decode(entry, streams, names)
    # Whatever a malformed entry makes go wrong (the analysis included, RecursionError
    # and MemoryError too), it costs that entry a dead letter, never the batch. The
    # type is in the message as well: a MemoryError has no message of its own.
    except Exception as exc:
        return _failed(exc)


def _failed(exc: Exception) -> Invalid:
    return Invalid(type(exc).__name__, f"could not decode the entry: {type(exc).__name__}: {exc}")


@overload
def _decode(
    entry: Entry, streams: Streams, names: IndexNames, *, batched: Literal[False] = False
) -> BulkAction | Invalid: ...
@overload
def _decode(
    entry: Entry, streams: Streams, names: IndexNames, *, batched: Literal[True]
) -> BulkAction | Invalid | ArticleEvent: ...
def _decode(
    entry: Entry, streams: Streams, names: IndexNames, *, batched: bool = False
) -> BulkAction | Invalid | ArticleEvent:
    """The entry's bulk action, or why it has none; `batched`: a valid article's event,
    for decode_entries to analyse with the batch's others."""
    payload = entry.fields.get(DATA_FIELD)
    if payload is None:
        # A few names say whose entry it is; a million of them made a 10 MB reason first.
        found = sorted(k.decode(errors="replace") for k in islice(entry.fields, NAMES_SHOWN))
        more = f", {len(entry.fields)} in all" if len(entry.fields) > NAMES_SHOWN else ""
        return Invalid("MissingDataField", f"entry has no __data__ field (fields: {found}{more})")
    if (refusal := payload_refusal(payload)) is not None:
        return refusal
    if entry.stream == streams.articles:
        try:
            if batched:
                return ArticleDocument.model_validate_json(payload)
            return article_action(ArticleDocument.model_validate_json(payload), names.articles)
        except ValidationError as exc:
            return _refusal(exc, "ArticleEvent")
    if entry.stream == streams.quotes:
        try:
            return quote_action(QuoteDocument.model_validate_json(payload), names.quotes)
        except ValidationError as exc:
            return _refusal(exc, "QuoteEvent")
    return Invalid("UnknownStream", f"no event type is consumed from {entry.stream!r}")


def _refusal(exc: ValidationError, contract: str) -> Invalid:
    """Why an event was refused: a schema_version this indexer does not read (from the
    event's own top-level field, not a search of its bytes, which found a nested one),
    or what did not validate."""
    for error in exc.errors(include_url=False):
        version = error["input"] if error["loc"] == ("schema_version",) else None
        if isinstance(version, int) and error["type"] == "literal_error":
            return Invalid(
                "UnknownSchemaVersion",
                f"schema_version {version} is not one this indexer reads "
                f"({SCHEMA_VERSION}); replay the dead letter after upgrading",
            )
    return Invalid("ValidationError", _describe(exc, contract))


def _describe(exc: ValidationError, contract: str) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"]) or "(document)"
        parts.append(f"{where}: {error['msg']}")
    return f"{contract}: " + "; ".join(parts)
