"""Search requests and results: pure functions from parameters to Elasticsearch bodies and back.

Queries use `simple_query_string`, which never fails on syntax: any string a
person types (unbalanced quotes, stray operators) yields results or none.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Elasticsearch's default index.max_result_window: from + size may not pass it.
RESULT_WINDOW = 10_000
EXCERPT_CHARS = 300


class SearchHit(BaseModel):
    id: str
    title: str
    url: str
    source: str
    published_at: str | None
    excerpt: str
    language: str | None = None
    tags: list[str] = []


class SearchPage(BaseModel):
    """One page of results; `from`/`to`/`total` are the numbers of "Viewing results 1 - 6 of 9"."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    total: int
    page: int
    size: int
    from_: int = Field(alias="from")
    to: int
    results: list[SearchHit]

    def viewing(self) -> str:
        return f"Viewing results {self.from_} - {self.to} of {self.total}"


class PageOutOfRange(ValueError):
    pass


def offset(page: int, size: int) -> int:
    start = (page - 1) * size
    if start + size > RESULT_WINDOW:
        msg = f"page {page} of size {size} is past the first {RESULT_WINDOW} results"
        raise PageOutOfRange(msg)
    return start


def build_search(q: str, page: int, size: int) -> dict[str, Any]:
    text = q.strip()
    query: dict[str, Any] = (
        {"simple_query_string": {
            "query": text,
            "fields": ["title^3", "summary^2", "body"],
            "default_operator": "and",
        }}
        if text
        else {"match_all": {}}
    )
    body: dict[str, Any] = {
        "query": query,
        "from": offset(page, size),
        "size": size,
        "track_total_hits": True,
        "_source": {"excludes": ["body", "title_suggest"]},
        "sort": (["_score", {"published_at": {"order": "desc", "missing": "_last"}}]
                 if text else [{"published_at": {"order": "desc", "missing": "_last"}},
                               {"fetched_at": "desc"}]),
    }
    if text:
        body["highlight"] = {
            "fields": {"body": {}, "summary": {}},
            "fragment_size": 150,
            "number_of_fragments": 2,
            "pre_tags": ["<mark>"],
            "post_tags": ["</mark>"],
            "encoder": "html",
        }
    return body


def shape_results(response: dict[str, Any], page: int, size: int) -> SearchPage:
    hits = response["hits"]["hits"]
    total = int(response["hits"]["total"]["value"])
    start = (page - 1) * size
    return SearchPage(
        total=total,
        page=page,
        size=size,
        from_=start + 1 if hits else 0,
        to=start + len(hits),
        results=[_hit(h) for h in hits],
    )


def _hit(hit: dict[str, Any]) -> SearchHit:
    src = hit["_source"]
    fragments = [*hit.get("highlight", {}).get("body", []),
                 *hit.get("highlight", {}).get("summary", [])]
    excerpt = " … ".join(fragments[:2]) if fragments else _clip(src.get("summary", ""))
    return SearchHit(
        id=hit["_id"],
        title=src["title"],
        url=src["url"],
        source=src["source"],
        published_at=src.get("published_at"),
        excerpt=excerpt,
        language=src.get("language"),
        tags=src.get("tags", []),
    )


def _clip(text: str) -> str:
    if len(text) <= EXCERPT_CHARS:
        return text
    return text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + "…"
