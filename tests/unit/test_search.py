"""build_search / shape_results: "Viewing results 1 - 6 of 9" as on the seed page."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.query.cursors import SORT_VALUES, Cursor, decode_cursor
from services.query.search import (
    EXCERPT_CHARS,
    RESULT_WINDOW,
    SORTS,
    InvalidSearch,
    PageOutOfRange,
    SearchPage,
    SearchRequest,
    build_search,
    month_range,
    offset,
    shape_results,
)
from shared.index import DERIVED_FIELDS, HIT_FIELDS
from shared.language.wording import expand, operators_refusal
from shared.saved_searches import SavedSearchFields
from shared.searching import query_text
from shared.text import one_line

REALDATA = Path(__file__).resolve().parents[2] / "samples" / "realdata"
NEWEST_FIRST = {"published_at": {"order": "desc", "missing": "_last"}}
TIEBREAK = {"canonical_url": "asc"}


def test_empty_query_matches_all_newest_first() -> None:
    for q in ("", "   ", "\n\t"):
        body = build_search(SearchRequest(q=q, page=1, size=6))
        assert body["query"] == {"match_all": {}}
        assert body["sort"] == [NEWEST_FIRST, {"fetched_at": "desc"}, TIEBREAK]
        assert "highlight" not in body
        assert body["from"] == 0
        assert body["size"] == 6
        assert body["track_total_hits"] == RESULT_WINDOW


def test_text_query_uses_simple_query_string_with_boosts_and_highlight() -> None:
    body = build_search(SearchRequest(q="  Kazakhstan sanctions ", page=1, size=10))
    sqs = body["query"]["simple_query_string"]
    assert sqs["query"] == (
        "(Kazakhstan | kazahstan | kazahsta | kazakstan | kazaksta | kozogiston)"
        " (sanctions | sanction)"
    )
    assert sqs["fields"] == [
        "title^3",
        "stem.title^3",
        "fold.title^3",
        "summary^2",
        "stem.summary^2",
        "fold.summary^2",
        "body",
        "stem.body",
        "fold.body",
    ]
    assert sqs["default_operator"] == "and"
    assert body["sort"] == ["_score", NEWEST_FIRST, TIEBREAK]
    highlight = body["highlight"]
    assert set(highlight["fields"]) == {"body", "summary"}
    assert highlight["pre_tags"] == ["<mark>"]
    assert highlight["post_tags"] == ["</mark>"]
    assert highlight["encoder"] == "html"


def test_source_asks_for_the_shown_fields_only() -> None:
    body = build_search(SearchRequest(q="x", page=1, size=10))
    assert set(body["_source"]) == set(HIT_FIELDS)
    assert not {"body", "event_id", "content_hash", *DERIVED_FIELDS} & set(body["_source"])


@pytest.mark.parametrize(
    ("page", "size", "start"), [(1, 6, 0), (2, 6, 6), (3, 10, 20), (1000, 10, 9990)]
)
def test_from_is_page_minus_one_times_size(page: int, size: int, start: int) -> None:
    assert offset(page, size) == start
    assert build_search(SearchRequest(q="q", page=page, size=size))["from"] == start


@pytest.mark.parametrize(("page", "size"), [(1001, 10), (2, RESULT_WINDOW), (201, 50)])
def test_offset_past_the_result_window_raises(page: int, size: int) -> None:
    with pytest.raises(PageOutOfRange):
        SearchRequest(q="q", page=page, size=size)
    with pytest.raises(ValueError, match="10000"):
        offset(page, size)


def test_last_page_inside_the_window_is_allowed() -> None:
    assert offset(200, 50) + 50 == RESULT_WINDOW


@given(
    q=st.text(),
    page=st.integers(min_value=1, max_value=200),
    size=st.integers(min_value=1, max_value=50),
)
def test_build_search_never_raises_for_any_text(q: str, page: int, size: int) -> None:
    # Refused with the reason before any body; judged on the text as the search reads it.
    assume(operators_refusal(one_line(q)) is None)
    body = build_search(SearchRequest(q=q, page=page, size=size))
    assert body["from"] == (page - 1) * size
    assert body["size"] == size
    if text := one_line(q):  # as documents are cleaned
        assert body["query"]["simple_query_string"]["query"] == expand(query_text(text))
    else:
        assert body["query"] == {"match_all": {}}


# --- shape_results ------------------------------------------------------------------------


def _seed_titles() -> list[str]:
    """The article titles listed on the seed page (a heading line followed by a long body)."""
    text = (REALDATA / "seed-page.txt").read_text(encoding="utf-8")
    blocks = text.split("Viewing results 1 - 6 of 9", 1)[1].strip().split("\n\n")
    return [b for b in blocks if len(b) < 200]


def _hit(n: int, title: str, **extra: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "title": title,
        "url": f"https://example.org/{n}",
        "source": "seed",
        "summary": f"Summary {n}",
        "published_at": "2025-03-29T00:00:00Z",
        "language": "en",
        "tags": ["politics"],
    }
    return {"_index": "articles-v1", "_id": f"id{n}", "_score": 1.0, "_source": source, **extra}


def _response(total: int, hits: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "took": 3,
        "timed_out": False,
        "hits": {"total": {"value": total, "relation": "eq"}, "max_score": 1.0, "hits": hits},
    }


def _nine_hits() -> list[dict[str, Any]]:
    titles = _seed_titles()
    return [_hit(n, titles[n % len(titles)]) for n in range(9)]


def test_seed_page_lists_the_six_articles_of_its_first_page() -> None:
    titles = _seed_titles()
    assert len(titles) == 6  # "Viewing results 1 - 6 of 9"
    assert "EU Sanctions Envoy’s Kazakh Visit Signals Rising Stakes" in titles


def test_first_page_of_nine() -> None:
    page = shape_results(_response(9, _nine_hits()[:6]), SearchRequest(page=1, size=6))
    assert (page.from_, page.to, page.total, page.page, page.size) == (1, 6, 9, 1, 6)
    assert page.viewing() == "Viewing results 1 - 6 of 9"
    assert [r.id for r in page.results] == [f"id{n}" for n in range(6)]


def test_the_seed_page_line_is_reproduced() -> None:
    text = (REALDATA / "seed-page.txt").read_text(encoding="utf-8")
    page = shape_results(_response(9, _nine_hits()[:6]), SearchRequest(page=1, size=6))
    assert page.viewing() in text


def test_second_page_of_nine() -> None:
    page = shape_results(_response(9, _nine_hits()[6:]), SearchRequest(page=2, size=6))
    assert (page.from_, page.to, page.total) == (7, 9, 9)
    assert page.viewing() == "Viewing results 7 - 9 of 9"
    assert len(page.results) == 3


def test_zero_hits() -> None:
    page = shape_results(_response(0, []), SearchRequest(page=1, size=6))
    assert (page.from_, page.to, page.total) == (0, 0, 0)
    assert page.viewing() == "Viewing results 0 - 0 of 0"
    assert page.results == []


def test_page_past_the_end_views_nothing() -> None:
    page = shape_results(_response(9, []), SearchRequest(page=3, size=6))
    assert (page.from_, page.to) == (0, 0)


def test_model_dump_uses_the_from_alias() -> None:
    page = shape_results(_response(9, _nine_hits()[:6]), SearchRequest(page=1, size=6))
    dumped = page.model_dump()
    assert dumped["from"] == 1
    assert "from_" not in dumped
    assert '"from":1' in page.model_dump_json()
    assert SearchPage.model_validate(dumped) == page  # read back by alias


def test_hit_fields_and_excerpt_from_summary() -> None:
    (result,) = shape_results(_response(1, [_hit(4, "Title")]), SearchRequest()).results
    assert result.id == "id4"
    assert result.title == "Title"
    assert result.url == "https://example.org/4"
    assert result.source == "seed"
    assert result.published_at == "2025-03-29T00:00:00Z"
    assert result.language == "en"
    assert result.tags == ["politics"]
    assert result.excerpt == "Summary 4"


def test_excerpt_prefers_highlights_body_then_summary_at_most_two() -> None:
    hit = _hit(
        1,
        "T",
        highlight={
            "body": ["a <mark>x</mark>", "b <mark>x</mark>"],
            "summary": ["c <mark>x</mark>"],
        },
    )
    (result,) = shape_results(_response(1, [hit]), SearchRequest()).results
    assert result.excerpt == "a <mark>x</mark> … b <mark>x</mark>"


def test_long_summary_is_clipped_at_a_word_boundary() -> None:
    text = (REALDATA / "seed-page.txt").read_text(encoding="utf-8")
    long_summary = next(b for b in text.split("\n\n") if len(b) > 1000)
    hit = _hit(1, "T")
    hit["_source"]["summary"] = long_summary
    (result,) = shape_results(_response(1, [hit]), SearchRequest()).results
    assert result.excerpt.endswith("…")
    assert len(result.excerpt) <= EXCERPT_CHARS + 1
    clipped = result.excerpt[:-1]
    assert long_summary.startswith(clipped)
    assert long_summary[len(clipped)] == " "  # cut before a space, not inside a word


def test_missing_optional_fields_in_source() -> None:
    hit = {"_id": "x", "_source": {"title": "T", "url": "https://s.example/x", "source": "s"}}
    (result,) = shape_results(_response(1, [hit]), SearchRequest()).results
    assert result.published_at is None
    assert result.language is None
    assert result.tags == []
    assert result.excerpt == ""


def test_seed_titles_are_plain_headings() -> None:
    # Guards _seed_titles: every title is a one-line heading without the ticker.
    for title in _seed_titles():
        assert "\n" not in title
        assert not re.search(r"[A-Z]{3}/USD", title)


# --- filters, languages, sorts, cursors, facets, totals -------------------------------------


def test_filters_go_in_a_bool_filter_beside_the_words() -> None:
    body = build_search(
        SearchRequest(
            q="gas",
            sources=("meduza.io",),
            countries=("KZ", "UZ"),
            tags=("sport",),
            languages=("ru",),
            date_from=date(2025, 3, 1),
            date_to=date(2025, 3, 31),
        )
    )
    bool_query = body["query"]["bool"]
    assert bool_query["must"][0]["simple_query_string"]["query"] == "gas"
    assert bool_query["filter"] == [
        {"terms": {"source": ["meduza.io"]}},
        {"terms": {"countries": ["KZ", "UZ"]}},
        {"terms": {"tags": ["sport"]}},
        {"terms": {"language": ["ru"]}},
        {"range": {"published_at": {"gte": "2025-03-01||/d", "lte": "2025-03-31||/d"}}},
    ]


def test_dates_and_months_are_the_readers_zone_s_when_one_is_set() -> None:
    request = SearchRequest(date_from=date(2025, 3, 1), date_to=date(2025, 3, 1))
    local = build_search(request, time_zone="Asia/Tashkent")
    assert local["query"]["bool"]["filter"] == [
        {
            "range": {
                "published_at": {
                    "gte": "2025-03-01||/d",
                    "lt": "2025-03-02||/d",
                    "time_zone": "Asia/Tashkent",
                }
            }
        }
    ]
    assert local["aggs"]["month"]["date_histogram"]["time_zone"] == "Asia/Tashkent"
    # UTC's bodies are the ones sent before the setting existed.
    utc = build_search(request)
    assert "time_zone" not in utc["query"]["bool"]["filter"][0]["range"]["published_at"]
    assert "time_zone" not in utc["aggs"]["month"]["date_histogram"]
    assert SavedSearchFields(q="metro", date_from=date(2025, 3, 1)).query("Asia/Tashkent")["bool"][
        "filter"
    ] == [{"range": {"published_at": {"gte": "2025-03-01||/d", "time_zone": "Asia/Tashkent"}}}]


def test_dates_in_the_wrong_order_are_refused() -> None:
    with pytest.raises(InvalidSearch, match="after"):
        SearchRequest(date_from=date(2025, 4, 1), date_to=date(2025, 3, 1))


def test_highlights_mark_the_typed_words_and_their_forms_in_the_plain_text() -> None:
    body = build_search(SearchRequest(q="вокзала -Ташкент"))
    should = body["highlight"]["highlight_query"]["bool"]["should"]
    assert should[0]["simple_query_string"]["query"] == "вокзала -Ташкент"
    patterns = {
        clause["regexp"]["body"]["value"] for clause in should[1:] if "body" in clause["regexp"]
    }
    assert "вокза.*" in patterns  # вокзал, вокзала, вокзалы
    assert not any("ташк" in p for p in patterns)  # an excluded word is not marked


def test_newest_sort_with_words_keeps_the_query() -> None:
    body = build_search(SearchRequest(q="gas", sort="newest"))
    assert body["sort"] == [NEWEST_FIRST, {"fetched_at": "desc"}, TIEBREAK]
    assert "simple_query_string" in body["query"]


def test_exact_total_bound_is_passed_on_and_a_lower_bound_is_shown_as_such() -> None:
    assert build_search(SearchRequest(), exact_total_up_to=500)["track_total_hits"] == 500
    response = _response(500, _nine_hits()[:6])
    response["hits"]["total"]["relation"] = "gte"
    page = shape_results(response, SearchRequest(size=6))
    assert page.total_relation == "gte"
    assert page.viewing() == "Viewing results 1 - 6 of 500+"


def _sorted(hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**h, "sort": [1.5, 1743206400000, f"https://example.org/{n}"]} for n, h in enumerate(hits)
    ]


def test_a_full_page_with_more_behind_it_carries_a_cursor_past_its_last_hit() -> None:
    page = shape_results(_response(9, _sorted(_nine_hits()[:6])), SearchRequest(q="x", size=6))
    assert page.next_cursor is not None
    cursor = decode_cursor(page.next_cursor)
    assert cursor == Cursor(6, "relevance", (1.5, 1743206400000, "https://example.org/5"))


def test_the_last_page_has_no_cursor() -> None:
    page = shape_results(_response(6, _sorted(_nine_hits()[:6])), SearchRequest(q="x", size=6))
    assert page.next_cursor is None


def test_a_cursor_page_uses_search_after_and_counts_from_its_offset() -> None:
    cursor = Cursor(10_000, "newest", (1743206400000, 1743206400000, "https://a"))
    request = SearchRequest(size=10, cursor=cursor)
    body = build_search(request)
    assert body["search_after"] == [1743206400000, 1743206400000, "https://a"]
    assert "from" not in body
    page = shape_results(_response(20_000, _sorted(_nine_hits()[:6])), request)
    assert (page.from_, page.to, page.page) == (10_001, 10_006, 1001)


def test_a_cursors_kinds_of_sort_value_are_those_of_its_sort() -> None:
    kinds = {
        "_score": "score",
        "published_at": "date",
        "fetched_at": "date",
        "canonical_url": "keyword",
    }
    for mode, sort in SORTS.items():
        fields = [entry if isinstance(entry, str) else next(iter(entry)) for entry in sort]
        assert SORT_VALUES[mode] == tuple(kinds[field] for field in fields)
        assert fields[-1] == "canonical_url"  # the keyword tiebreak


def test_a_cursor_for_another_sort_is_refused() -> None:
    with pytest.raises(InvalidSearch, match="sort=newest"):
        SearchRequest(q="x", sort="relevance", cursor=Cursor(10, "newest", (1, 2, "u")))


def test_a_month_no_search_can_filter_on_is_no_facet() -> None:
    # A document dated past 9999 by another writer, as epoch milliseconds, which
    # Elasticsearch keeps: its bucket failed the whole search page, front page included.
    response = _response(9, _nine_hits()[:6])
    response["aggregations"] = {
        "month": {
            "buckets": [
                {"key_as_string": "+10000-01", "key": 253402300800000, "doc_count": 1},
                {"key_as_string": "2025-03", "key": 1740787200000, "doc_count": 8},
            ]
        }
    }
    facets = shape_results(response, SearchRequest(size=6)).facets
    assert [(f.value, f.count) for f in facets.month] == [("2025-03", 8)]


def test_facets_are_read_from_the_aggregations() -> None:
    response = _response(9, _nine_hits()[:6])
    response["aggregations"] = {
        "source": {"buckets": [{"key": "meduza.io", "doc_count": 7}]},
        "country": {"buckets": [{"key": "KZ", "doc_count": 3}]},
        "month": {"buckets": [{"key_as_string": "2025-03", "key": 1740787200000, "doc_count": 9}]},
    }
    facets = shape_results(response, SearchRequest(size=6)).facets
    assert [(f.value, f.count) for f in facets.source] == [("meduza.io", 7)]
    assert [(f.value, f.count) for f in facets.country] == [("KZ", 3)]
    assert [(f.value, f.count) for f in facets.month] == [("2025-03", 9)]
    assert set(build_search(SearchRequest())["aggs"]) == {"source", "country", "month"}
    assert "aggs" not in build_search(SearchRequest(facets=False))


@pytest.mark.parametrize(
    ("month", "first", "last"),
    [
        ("2025-03", date(2025, 3, 1), date(2025, 3, 31)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2023-12", date(2023, 12, 1), date(2023, 12, 31)),
    ],
)
def test_month_range(month: str, first: date, last: date) -> None:
    assert month_range(month) == (first, last)


def test_summary_excerpts_are_html_escaped_like_highlights() -> None:
    hit = _hit(1, "T")
    hit["_source"]["summary"] = "<script>alert(1)</script> & more"
    (result,) = shape_results(_response(1, [hit]), SearchRequest()).results
    assert result.excerpt == "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("gas OR oil", "gas | oil"),
        ("OR OR", "| |"),
        ('"black OR white" OR grey', '"black OR white" | grey'),
        ("ORACLE or OR-free", "ORACLE or OR-free"),
        ('"unbalanced OR', '"unbalanced OR'),
    ],
)
def test_the_word_or_is_the_or_operator_outside_phrases(typed: str, sent: str) -> None:
    assert query_text(typed) == sent


def test_a_fragment_repeated_in_summary_and_body_shows_once() -> None:
    hit = _hit(
        1,
        "T",
        highlight={"body": ["Die <mark>Java</mark> VM"], "summary": ["Die <mark>Java</mark> VM"]},
    )
    (result,) = shape_results(_response(1, [hit]), SearchRequest()).results
    assert result.excerpt == "Die <mark>Java</mark> VM"


def test_a_response_filtered_down_to_nothing_is_an_empty_page() -> None:
    # filter_path leaves out "hits.hits" and "aggregations" when they are empty.
    response = {"hits": {"total": {"value": 0, "relation": "eq"}}}
    page = shape_results(response, SearchRequest(q="nothing"))
    assert (page.total, page.from_, page.to, page.results) == (0, 0, 0, [])
    assert page.facets.source == []


@pytest.mark.parametrize(
    ("typed", "clean"),
    [
        ("Ташкент\u00a0вокзал", "Ташкент вокзал"),  # no-break spaces, as Russian typesets
        ("в\u202fТашкенте", "в Ташкенте"),
        ("И\u0306ошкар-Ола", "Йошкар-Ола"),  # decomposed, as pasted from a PDF
        ("Ше\u0308лковый путь", "Шёлковый путь"),
        ("O\u0308skemen", "Öskemen"),
        ("Таш\u00adкент", "Ташкент"),  # a soft hyphen, a zero-width space
        ("Таш\u200bкент", "Ташкент"),
    ],
)
def test_a_search_is_cleaned_as_documents_are(typed: str, clean: str) -> None:
    # Each found nothing: Elasticsearch's parser splits words at plain spaces only (a
    # no-break space became a term no document holds), and documents are kept NFC
    # without invisible characters, which the search kept.
    assert build_search(SearchRequest(q=typed)) == build_search(SearchRequest(q=clean))
    assert SavedSearchFields(q=typed).query() == SavedSearchFields(q=clean).query()
