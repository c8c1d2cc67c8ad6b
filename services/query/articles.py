"""One article, articles like it, and title suggestions: pure bodies and shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, TypeAdapter
from typing_extensions import TypedDict  # pydantic validates only this one on 3.11

from services.query.search import (
    HITS,
    UNREADABLE,
    LinkUrl,
    SearchHit,
    hit_fields,
    readable_hits,
    readable_result,
)
from shared.events import TITLE_CHARS, clipped, is_http_url
from shared.index import ARTICLE_SOURCE, HIT_FIELDS
from shared.language.wording import TEXT_FIELDS
from shared.text import one_line

# The article `_id`: the first 32 hex digits of sha256(canonical URL).
ARTICLE_ID = r"^[0-9a-f]{32}$"


class Article(BaseModel):
    id: str
    title: str
    url: LinkUrl
    source: str
    published_at: str | None = None
    summary: str = ""
    body: str = ""
    authors: list[str] = []
    tags: list[str] = []
    countries: list[str] = []
    language: str | None = None


class Similar(BaseModel):
    id: str
    results: list[SearchHit]


class Suggestion(BaseModel):
    id: str
    title: str


class Suggestions(BaseModel):
    q: str
    suggestions: list[Suggestion]


class Found(TypedDict):
    """A get's answer, as far as it is the cluster's to get right: a document's source."""

    _id: str
    _source: dict[str, Any]


FOUND: TypeAdapter[Found] = TypeAdapter(Found)


def shape_article(document: Mapping[str, Any]) -> Article:
    # The stored _source read as the index contract has it (fields it does not name dropped).
    return Article.model_validate(
        {**ARTICLE_SOURCE.validate_python(document["_source"]), "id": document["_id"]}
    )


def build_similar(index: str, doc_id: str, size: int) -> dict[str, Any]:
    return {
        "query": {
            "more_like_this": {
                # The stemmed copies too: "санкции" in one article links it to "санкций" in another.
                "fields": [f"{form}{name}" for name, _ in TEXT_FIELDS for form in ("", "stem.")],
                "like": [{"_index": index, "_id": doc_id}],
                # News corpora are small per topic: a word in two articles already links them.
                "min_term_freq": 1,
                "min_doc_freq": 2,
                "max_query_terms": 25,
            }
        },
        "size": size,
        "_source": list(HIT_FIELDS),
    }


def shape_similar(doc_id: str, response: Mapping[str, Any]) -> tuple[Similar, list[str]]:
    """The similar articles, and why each hit that does not read was left out."""
    try:
        results = [hit_fields(h) for h in HITS.validate_python(response["hits"]["hits"])]
        return Similar.model_validate({"id": doc_id, "results": results}), []
    except UNREADABLE:
        kept, left_out = readable_hits(response["hits"]["hits"], readable_result)
        return Similar.model_validate({"id": doc_id, "results": kept}), left_out


def build_suggest(prefix: str, size: int) -> dict[str, Any]:
    return {
        "size": 0,
        # The suggestion text is the indexed input, cut at 50 characters: the title
        # comes from _source whole; its URL says whether a search would show it.
        "_source": ["title", "url"],
        "suggest": {
            "titles": {
                "prefix": one_line(prefix),  # as titles are kept: NFC, nothing invisible
                "completion": {"field": "title_suggest", "size": size, "skip_duplicates": True},
            }
        },
    }


def shape_suggest(prefix: str, response: dict[str, Any]) -> Suggestions:
    options = response.get("suggest", {}).get("titles", [{}])[0].get("options", [])
    sources = ((o["_id"], o.get("_source", {})) for o in options)
    return Suggestions(
        q=prefix,
        # A title that is no text (another writer's document) is no suggestion, where it
        # failed every prefix that reached it; nor one whose URL is no http(s) link, as
        # searches leave its document out and its article is a 404.
        suggestions=[
            Suggestion(id=doc_id, title=clipped(source["title"], TITLE_CHARS))
            for doc_id, source in sources
            if isinstance(source.get("title"), str)
            and isinstance(source.get("url"), str)
            and is_http_url(source["url"])
        ],
    )
