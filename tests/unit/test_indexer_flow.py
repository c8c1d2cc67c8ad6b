"""Pure parts of the indexer's flow control: chunking, backoff, the retention floor."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.indexer.documents import BulkAction
from services.indexer.upkeep import pending_age_seconds
from services.indexer.writer import Work, chunked
from shared.backoff import Backoff
from shared.consumer import Entry, parse_id
from shared.groups import GroupState, trim_floor


def _work(sizes: list[int]) -> Work:
    """Actions whose bulk weight (document plus ~82 header bytes) is `size` + 82."""
    return [
        (Entry("s", f"{n}-0", {b"__data__": b"{}"}), BulkAction("i", str(n), 1, "x" * size))
        for n, size in enumerate(sizes)
    ]


def test_chunks_respect_count_and_bytes_and_keep_order() -> None:
    # The document as sent is weighed (derived search fields make it larger than
    # the stream entry), plus its header line.
    work = _work([100, 100, 100, 800, 100, 10])
    chunks = list(chunked(work, max_count=3, max_bytes=1000))

    assert [[e.entry_id for e, _ in c] for c in chunks] == [
        ["0-0", "1-0", "2-0"],
        ["3-0"],
        ["4-0", "5-0"],
    ]


def test_an_entry_larger_than_the_byte_bound_travels_alone() -> None:
    chunks = list(chunked(_work([10, 5000, 10]), max_count=10, max_bytes=1000))
    assert [len(c) for c in chunks] == [1, 1, 1]


@given(
    st.lists(st.integers(min_value=1, max_value=3000), max_size=60),
    st.integers(min_value=1, max_value=10),
    st.integers(min_value=100, max_value=5000),
)
def test_chunking_loses_and_duplicates_nothing(sizes: list[int], count: int, size: int) -> None:
    work = _work(sizes)
    chunks = list(chunked(work, count, size))
    assert [item for chunk in chunks for item in chunk] == work
    assert all(1 <= len(chunk) <= count for chunk in chunks)
    assert all(len(c) == 1 or sum(a.size for _, a in c) <= size for c in chunks)


@given(st.integers(min_value=1, max_value=10_000))
def test_backoff_is_equal_jitter_within_its_cap(attempt: int) -> None:
    ceiling = min(30.0, 0.5 * 2 ** min(attempt - 1, 64))
    assert ceiling / 2 <= Backoff(first=0.5, cap=30.0).delay(attempt) <= ceiling


def _group(last: str, oldest: str | None = None) -> GroupState:
    return GroupState("g", last, 0 if oldest is None else 1, oldest, 0)


def test_trim_floor_is_the_retention_cutoff_when_every_group_is_past_it() -> None:
    now, retention = 10_000_000, 1_000_000
    assert trim_floor(now, retention, [_group("9500000-0")]) == "9000000-0"


def test_trim_floor_never_passes_a_pending_or_undelivered_entry() -> None:
    now, retention = 10_000_000, 1_000_000
    behind = _group("5000000-3")  # has not read past 5000000-3
    stuck = _group("9900000-0", oldest="4000000-7")  # still holds 4000000-7 pending
    assert trim_floor(now, retention, [behind]) == "5000000-3"
    assert trim_floor(now, retention, [behind, stuck]) == "4000000-7"
    assert trim_floor(now, retention, [_group("0-0")]) == "0-0"


def test_ids_and_pending_age() -> None:
    assert parse_id("1700000000000-12") == (1700000000000, 12)
    assert pending_age_seconds("1000-0", now_ms=4500) == 3.5
    assert pending_age_seconds(None, now_ms=4500) == 0.0
