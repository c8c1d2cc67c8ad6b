"""How many entries the indexer asks Redis for next (shared/consumer.py's next_read)."""

from __future__ import annotations

from shared.consumer import Entry, next_read

MIB = 1024 * 1024


def _read(count: int, size: int) -> list[Entry]:
    # A field name of eight bytes, as `__data__`, and a value making up the size.
    return [Entry("articles", f"{n}-0", {b"__data__": b"x" * (size - 8)}) for n in range(count)]


def test_a_full_read_of_small_entries_doubles_the_next_up_to_the_batch() -> None:
    assert next_read(8, _read(8, 1000), most=1000, budget=32 * MIB) == 16
    assert next_read(512, _read(512, 1000), most=1000, budget=32 * MIB) == 1000


def test_a_read_that_was_not_full_does_not_grow_it() -> None:
    assert next_read(64, _read(10, 1000), most=1000, budget=32 * MIB) == 64
    assert next_read(64, [], most=1000, budget=32 * MIB) == 64


def test_large_entries_shrink_it_to_what_the_budget_holds_at_their_mean_size() -> None:
    assert next_read(1000, _read(1000, 1 * MIB), most=1000, budget=32 * MIB) == 32
    mixed = _read(3, 10 * MIB) + _read(1, 2 * MIB)  # 8 MiB each on the mean
    assert next_read(4, mixed, most=1000, budget=32 * MIB) == 4


def test_an_entry_larger_than_the_budget_is_still_read_one_at_a_time() -> None:
    assert next_read(8, _read(1, 40 * MIB), most=1000, budget=32 * MIB) == 1
