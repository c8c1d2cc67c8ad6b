"""The bench's reading of /proc: which processes are an ingest replica's, and their CPU."""

from __future__ import annotations

from bench.scaling import descendants, parse_stat

# A worker's /proc/<pid>/stat: a command name with a space and a ")" in it, parent 41,
# utime 300, stime 20, cutime 5, cstime 1 (ticks), 2,500 resident pages.
STAT = (
    "57 (python (worker) x) S 41 57 41 0 -1 4194560 1200 0 0 0 300 20 5 1 20 0 3 0 "
    "9000 123456789 2500 18446744073709551615 1 1 0 0 0 0 0 16781312 17922 0 0 0 17 1 0 0"
)


def test_a_stat_line_gives_the_parent_the_cpu_ticks_with_reaped_children_and_the_pages() -> None:
    assert parse_stat(STAT) == (41, 326, 2500)


def test_descendants_are_the_whole_tree_below_the_roots_and_nothing_else() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 11, 13: 11, 20: 1, 21: 20, 30: 99}

    assert sorted(descendants(parents, [10, 30])) == [10, 11, 12, 13, 30]
    assert descendants(parents, [404]) == []  # a root that already ended
