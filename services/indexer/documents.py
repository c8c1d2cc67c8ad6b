"""Events to Elasticsearch bulk actions: pure functions.

The documents (shared/index.py) are validated and serialized to JSON in one pass and
handed to the bulk request as ready-made NDJSON bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

import orjson
from pydantic import ValidationError

from shared.events import ArticleEvent, QuoteEvent
from shared.index import ArticleDocument, QuoteDocument, suggest_input


@dataclass(frozen=True)
class BulkAction:
    index: str
    doc_id: str
    version: int
    document: str | bytes
    """The document's JSON; the indexer's own are UTF-8 bytes, written to the bulk body as
    they are."""
    trace: dict[str, str] | None = None
    """The publisher's trace context (traceparent, tracestate), when it sent one."""
    supersedes: tuple[tuple[str, int], ...] = ()
    """Ids of documents that are this same article and the versions it was published at
    there (the event's `supersedes`), deleted once this one is stored if still that
    version: another article's written there since is left alone."""

    @property
    def size(self) -> int:
        """Bytes this action adds to a bulk body: the document and about its header line.
        The indexer's documents are bytes; one given as text is counted as UTF-8 (its
        characters undercounted Cyrillic twice and Chinese three times)."""
        document = self.document
        weight = len(document) if isinstance(document, bytes) else len(document.encode())
        return weight + len(self.index) + len(self.doc_id) + 80

    def operations(self) -> tuple[dict[str, Any], str]:
        # External versioning: a replay of an older event is refused with a 409
        # instead of overwriting a newer one.
        header = {
            "index": {
                "_index": self.index,
                "_id": self.doc_id,
                "version": self.version,
                "version_type": "external",
            }
        }
        document = self.document
        return header, document if isinstance(document, str) else document.decode()

    def lines(self) -> tuple[bytes, bytes, bytes]:
        """ndjson()'s bytes in three parts: the writer joins every action's into one body,
        without a copy of each document on the way."""
        document = self.document
        # External versioning, as operations() says. The header line is what
        # `json.dumps` makes of operations()'s header, written out directly: building
        # and dumping the dictionaries was 3 % of an article's decoding.
        header = (
            f'{{"index": {{"_index": {_json_string(self.index)}, '
            f'"_id": {_json_string(self.doc_id)}, "version": {int(self.version)}, '
            '"version_type": "external"}}\n'
        )
        return (
            header.encode(),
            document if isinstance(document, bytes) else document.encode(),
            b"\n",
        )

    def ndjson(self) -> bytes:
        """The action's two lines of a bulk body, ready to send: the client's serializer
        passes bytes through, so nothing is serialized twice on the way."""
        return b"".join(self.lines())


def superseded_delete(index: str, doc_id: str, published: int) -> dict[str, Any]:
    """The operation deleting a superseded document, the version an article was published
    at there (read back first: writer.delete_superseded). External versions: one past
    it, so anything written there since stays (409), and the article's older events
    arriving later meet the delete's version."""
    return {
        "delete": {
            "_index": index,
            "_id": doc_id,
            "version": published + 1,
            "version_type": "external",
        }
    }


def article_action(event: ArticleEvent, alias: str) -> BulkAction:
    document = (
        event
        if isinstance(event, ArticleDocument)
        else ArticleDocument.model_validate(event.model_dump())
    )
    return _action(document, alias)


# The event's fields as ArticleDocument writes them first, then its computed ones, then
# the derived fields (title_suggest, stem, fold), which come last.
_EVENT_JSON = ArticleEvent.__pydantic_serializer__.to_json
_COMPUTED = set(ArticleEvent.model_computed_fields)
# What the document leaves out of the event: an instruction about other documents.
_NOT_STORED = {*_COMPUTED, "supersedes"}


def analysed_article_action(
    event: ArticleEvent, analysed: list[tuple[str, str]], alias: str
) -> BulkAction:
    """article_action's result, the search fields given: `analyse` of title, summary, body.

    The document is the event's JSON with what ArticleDocument adds written after it,
    and the id and version, which the header needs too, made once: the same bytes,
    without a second model or its computed fields calling back into Python. What is
    added is strings and an int, which orjson writes as pydantic's core does (the
    batch test compares them) in a quarter of its time: −1.4 to −2.4 µs an article
    (bench/README.md, "Session 12").
    """
    (title_stem, title_fold), (summary_stem, summary_fold), (body_stem, body_fold) = analysed
    key, version = event.idempotency_key, event.version
    derived = orjson.dumps(
        {
            # What ArticleEvent computes: a hex digest and an int.
            "idempotency_key": key,
            "version": version,
            "title_suggest": suggest_input(event.title),
            "stem": {"title": title_stem, "summary": summary_stem, "body": body_stem},
            "fold": {"title": title_fold, "summary": summary_fold, "body": body_fold},
        }
    )
    document = b"%b,%b" % (_EVENT_JSON(event, exclude=_NOT_STORED)[:-1], derived[1:])
    superseded = tuple((s.key, s.version) for s in event.supersedes or ())
    return BulkAction(alias, key, version, document, _trace(event), superseded)


def stored_source(source: dict[str, Any], alias_is_articles: bool) -> bytes:
    """A stored document's JSON for a copy (`caravan reindex`), derived fields made anew.

    An article indexed before a derived field existed gains it; one that no longer
    validates is copied as it is. Read as an event from a stream is: one indexed with
    a URL as its feed wrote it (a space, a bidi control) gains its escaped form too.
    """
    if alias_is_articles:
        try:
            document = ArticleDocument.model_validate_json(orjson.dumps(source))
            return document.__pydantic_serializer__.to_json(document)
        except ValidationError:
            pass
    return json.dumps(source).encode()


def quote_action(event: QuoteEvent, alias: str) -> BulkAction:
    document = (
        event
        if isinstance(event, QuoteDocument)
        else QuoteDocument.model_validate(event.model_dump())
    )
    return _action(document, alias)


def _action(document: ArticleDocument | QuoteDocument, alias: str) -> BulkAction:
    """The index operation of a document: its id, external version and trace context."""
    return BulkAction(
        alias,
        document.idempotency_key,
        document.version,
        document.__pydantic_serializer__.to_json(document),
        _trace(document),
        tuple((s.key, s.version) for s in document.supersedes or ())
        if isinstance(document, ArticleDocument)
        else (),
    )


def _trace(event: ArticleEvent | QuoteEvent) -> dict[str, str] | None:
    if event.traceparent is None:
        return None
    return {"traceparent": event.traceparent, "tracestate": event.tracestate or ""}
