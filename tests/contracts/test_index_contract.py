"""What the indexer writes is what the query service reads (shared/index.py).

The write models (ArticleDocument, QuoteDocument) and the read models (ArticleSource,
QuoteSource) are declared apart: these tests hold them together on the sample events.
"""

from __future__ import annotations

import json
from typing import Any

from services.query.search import HITS, hit_fields
from shared.events import ArticleEvent
from shared.index import (
    ARTICLE_SOURCE,
    DERIVED_FIELDS,
    HIT_FIELDS,
    QUOTE_SOURCE,
    ArticleDocument,
    ArticleSource,
    QuoteDocument,
    QuoteSource,
    articles_mapping,
    quotes_mapping,
)
from tests.conftest import REPO

EVENTS = REPO / "docs" / "examples" / "events" / "valid"


def _stored(document: ArticleDocument | QuoteDocument) -> dict[str, Any]:
    """The `_source` Elasticsearch keeps: the JSON the indexer sends."""
    stored: dict[str, Any] = json.loads(document.model_dump_json())
    return stored


def _article() -> dict[str, Any]:
    return _stored(ArticleDocument.model_validate_json((EVENTS / "ArticleEvent.json").read_bytes()))


def _quote() -> dict[str, Any]:
    return _stored(QuoteDocument.model_validate_json((EVENTS / "QuoteEvent.json").read_bytes()))


def _fields(model: type[ArticleSource] | type[QuoteSource]) -> set[str]:
    return set(model.__annotations__)


def test_the_read_models_name_only_mapped_fields() -> None:
    assert _fields(ArticleSource) <= set(articles_mapping()["properties"])
    assert _fields(QuoteSource) <= set(quotes_mapping()["properties"])


def test_a_written_article_reads_back_with_every_field_as_written() -> None:
    stored = _article()
    read = ARTICLE_SOURCE.validate_python(stored)
    assert set(read) == _fields(ArticleSource)
    assert read == {name: stored[name] for name in _fields(ArticleSource)}


def test_the_fields_readers_are_not_shown_are_the_ones_the_document_adds() -> None:
    added = set(ArticleDocument.model_computed_fields) - set(ArticleEvent.model_computed_fields)
    assert set(DERIVED_FIELDS) == added


def test_an_article_filtered_as_the_search_asks_still_reads() -> None:
    stored = _article()
    filtered = {name: value for name, value in stored.items() if name in HIT_FIELDS}
    whole, hit = HITS.validate_python(
        [{"_id": "x", "_source": stored}, {"_id": "x", "_source": filtered}]
    )
    assert "body" not in hit["_source"]
    assert hit["_source"] == {name: stored[name] for name in HIT_FIELDS}
    # A hit shows the same from the fields asked as from the whole document.
    assert hit_fields(hit) == hit_fields(whole)


def test_a_written_quote_reads_back_with_every_field_as_written() -> None:
    stored = _quote()
    read = QUOTE_SOURCE.validate_python(stored)
    assert set(read) == _fields(QuoteSource)
    assert read == {name: stored[name] for name in _fields(QuoteSource)}
