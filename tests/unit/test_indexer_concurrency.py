"""The indexer's adaptive in-flight limit and the bulk lines it sends: pure parts."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from services.indexer.concurrency import JUDGED_BYTES, AdaptiveLimit
from services.indexer.documents import BulkAction

MIB = 1024 * 1024


def test_fast_answers_add_about_one_request_per_round_up_to_the_ceiling() -> None:
    limit = AdaptiveLimit(4)
    seen = [limit.limit]
    for _ in range(12):
        limit.answered(0.1, MIB)
        seen.append(limit.limit)
    assert seen[0] == 1
    assert seen == sorted(seen)
    assert seen[-1] == 4


def test_an_answer_much_slower_per_byte_halves_the_limit() -> None:
    limit = AdaptiveLimit(8, start=8)
    limit.answered(0.1, MIB)
    limit.answered(0.5, MIB)
    assert limit.limit == 4


def test_slow_answers_of_requests_sent_before_a_cut_do_not_cut_again() -> None:
    limit = AdaptiveLimit(8, start=8)
    limit.answered(0.1, MIB)
    for _ in range(8):  # the other requests of the round, all as slow
        limit.answered(0.5, MIB)
    assert limit.limit == 4
    limit.answered(0.5, MIB)  # a request sent at the new limit, still slow
    assert limit.limit == 2


def test_a_cluster_fault_drops_to_one_request() -> None:
    limit = AdaptiveLimit(8, start=6)
    limit.refused()
    assert limit.limit == 1


def test_small_requests_leave_the_limit_alone() -> None:
    limit = AdaptiveLimit(8, start=3)
    for seconds in (0.001, 5.0, 0.001):
        limit.answered(seconds, JUDGED_BYTES - 1)
    assert limit.limit == 3


@given(
    st.integers(min_value=1, max_value=16),
    st.lists(
        st.one_of(
            st.none(),
            st.tuples(
                st.floats(min_value=0.0001, max_value=60),
                st.integers(min_value=0, max_value=50 * MIB),
            ),
        )
    ),
)
def test_the_limit_stays_between_one_and_the_ceiling(
    ceiling: int, answers: list[tuple[float, int] | None]
) -> None:
    # The ceiling is what bounds the batches, so the entries, held in memory.
    limit = AdaptiveLimit(ceiling, start=ceiling)
    for answer in answers:
        if answer is None:
            limit.refused()
        else:
            limit.answered(*answer)
        assert 1 <= limit.limit <= ceiling


def test_an_action_is_two_ndjson_lines_with_an_external_version() -> None:
    action = BulkAction("articles", 'id"1', 7, '{"title":"Ташкент"}')
    header, document, tail = action.ndjson().split(b"\n")
    assert json.loads(header) == {
        "index": {"_index": "articles", "_id": 'id"1', "version": 7, "version_type": "external"}
    }
    assert json.loads(document) == {"title": "Ташкент"}
    assert tail == b""
