"""One query for what a search matches: the search box, its feeds and saved searches."""

from __future__ import annotations

from datetime import date

from hypothesis import assume, example, given
from hypothesis import strategies as st

from services.query.search import SearchRequest, build_search
from shared.language.wording import operators_refusal
from shared.searching import Criteria, match_query
from shared.text import one_line


def test_the_search_runs_the_shared_match_query() -> None:
    request = SearchRequest(
        q="Tashkent metro OR tram",
        sources=("kun.uz",),
        languages=("uz", "ru"),
        date_from=date(2025, 1, 1),
        date_to=date(2025, 1, 31),
    )
    assert build_search(request)["query"] == match_query(request.criteria)
    assert match_query(request.criteria)["bool"]["filter"] == [
        {"terms": {"source": ["kun.uz"]}},
        {"terms": {"language": ["uz", "ru"]}},
        {"range": {"published_at": {"gte": "2025-01-01||/d", "lte": "2025-01-31||/d"}}},
    ]


def test_no_words_and_no_filters_match_everything() -> None:
    assert match_query(Criteria(q="  ")) == {"match_all": {}}
    assert match_query(Criteria(countries=("KZ",))) == {
        "bool": {"must": [{"match_all": {}}], "filter": [{"terms": {"countries": ["KZ"]}}]}
    }


@given(st.text(max_size=60))
@example("*\x1b")  # refused as read: the control character goes, `*` alone stays
def test_any_words_give_the_query_the_search_sends(q: str) -> None:
    # A search of those is refused, never sent; judged on the text as the search reads it.
    assume(operators_refusal(one_line(q)) is None)
    request = SearchRequest(q=q, tags=("economy",))
    assert build_search(request)["query"] == match_query(Criteria(q=q, tags=("economy",)))
