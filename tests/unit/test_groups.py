"""Which consumer groups count for backpressure and trimming, and the limits' consistency."""

from __future__ import annotations

import pytest

from shared.groups import (
    GroupState,
    LimitsError,
    check_lag_within_maxlen,
    split_groups,
    trim_floor,
    trimmed_unread,
    worst_lag,
)

HOUR_MS = 3_600_000


def _group(
    name: str,
    *,
    lag: int | None = 0,
    pending: int = 0,
    idle_ms: int | None = None,
    last: str = "9000000-0",
) -> GroupState:
    return GroupState(name, last, pending, None, lag, 0 if idle_ms is None else 1, idle_ms)


def test_lag_of_the_slowest_group_or_its_pending_when_unknown() -> None:
    assert worst_lag([]) == 0
    assert worst_lag([_group("a", lag=3, pending=1), _group("b", lag=12)]) == 12
    assert worst_lag([_group("a", lag=None, pending=40), _group("b", lag=2)]) == 40


def test_configured_groups_count_however_long_they_are_away() -> None:
    indexer = _group("indexer", lag=5000)  # no consumer at all right now
    live, abandoned = split_groups([indexer], {"indexer"}, 24 * HOUR_MS)
    assert live == [indexer]
    assert abandoned == []


def test_an_unconfigured_group_counts_while_its_consumers_are_active() -> None:
    active = _group("search-team", idle_ms=2000)
    debug = _group("debug-2026-03", lag=900_000, idle_ms=30 * 24 * HOUR_MS)
    renamed = _group("indexer-old", lag=50_000)  # no consumers left
    live, abandoned = split_groups([active, debug, renamed], {"indexer"}, 24 * HOUR_MS)
    assert live == [active]
    assert abandoned == [debug, renamed]
    assert worst_lag(live) == 0  # ingest is not paused by the abandoned ones


def test_trimming_ignores_abandoned_groups_but_never_passes_live_ones() -> None:
    now, retention = 10_000_000, 1_000_000
    live = _group("indexer", last="9500000-0")
    stuck = _group("old", last="100-0")
    assert trim_floor(now, retention, [live]) == "9000000-0"
    assert trim_floor(now, retention, [live, stuck]) == "100-0"


def test_a_maxlen_cap_below_the_lag_bound_is_refused() -> None:
    check_lag_within_maxlen(100_000, None)
    check_lag_within_maxlen(100_000, 1_000_000)
    with pytest.raises(LimitsError, match="CARAVAN_INGEST_MAX_LAG"):
        check_lag_within_maxlen(100_000, 100_000)


def _reader(last: str, entries_read: int | None) -> GroupState:
    return GroupState("g", last, 0, None, None, entries_read=entries_read)


def test_entries_trimmed_unread_are_those_removed_past_what_the_group_read() -> None:
    first = "5000-0"
    # Read 100, then a cap removed 4000 from the head: 3900 it never read.
    assert trimmed_unread(_reader("100-0", 100), first, 4000) == 3900
    # Never read at all: Redis cannot count (entries-read nil), yet all removed were unread.
    assert trimmed_unread(_reader("0-0", None), first, 4000) == 4000
    # Up to the stream's first entry or past it: nothing it had not read is gone.
    assert trimmed_unread(_reader("5000-0", 4001), first, 4000) == 0
    assert trimmed_unread(_reader("100-0", 100), None, 4000) == 0
    # The group read just before the gap: those removed were all read.
    assert trimmed_unread(_reader("4999-0", 4000), first, 4000) == 0
    # Somewhere unknown: Redis cannot say how many it read, so no verdict.
    assert trimmed_unread(_reader("100-0", None), first, 4000) == 0
