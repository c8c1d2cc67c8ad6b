"""Items in order, in groups bounded by their weight (and count). Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def groups(
    items: Iterable[T], weight: Callable[[T], int], most: int, most_items: int | None = None
) -> Iterator[list[T]]:
    """`items` in order, in groups of at most `most` weight and `most_items` items; an item
    heavier than `most` is a group of its own."""
    group: list[T] = []
    size = 0
    for item in items:
        heft = weight(item)
        if group and (size + heft > most or len(group) == most_items):
            yield group
            group, size = [], 0
        group.append(item)
        size += heft
    if group:
        yield group
