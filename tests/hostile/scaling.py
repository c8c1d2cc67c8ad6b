"""How a parser's work grows with its input: the doubling check of the hostile suite.

Not a wall-clock limit: the CPU time of an input of size 2n is compared with that of
size n, measured alternately in the same run. Linear work gives about 2, quadratic
about 4. Sizes start where one run costs enough CPU to be measured well.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
# Doubling the input may at most about double the work.
MAX_DOUBLING_RATIO = 3.0
_MEASURABLE_SECONDS = 0.03
_LARGEST_SIZE = 1 << 22


def _cpu_seconds(work: Callable[[T], object], document: T) -> float:
    # The collector off, as timeit has it: a full collection costs with everything the
    # test process holds (the whole suite's modules), not with the document, and one
    # landing in the larger run read as superlinear work (3.8x for a linear parse).
    gc.disable()
    try:
        started = time.process_time()
        # Refusing a document is a fine answer; only its cost is measured here.
        with contextlib.suppress(ValueError):
            work(document)
        return time.process_time() - started
    finally:
        gc.enable()


def doubling_ratio(
    work: Callable[[T], object], make: Callable[[int], T], size: int, repeats: int = 5
) -> float:
    """CPU time of `work(make(2n))` over that of `work(make(n))`, each the median of
    `repeats` runs, n grown from `size` until one run is measurable."""
    while _cpu_seconds(work, make(size)) < _MEASURABLE_SECONDS and size < _LARGEST_SIZE:
        size *= 2
    small, large = make(size), make(2 * size)
    gc.collect()  # what the runs above left is not theirs to collect
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(repeats):  # alternating, so load on the machine hits both alike
        times[1].append(_cpu_seconds(work, small))
        times[2].append(_cpu_seconds(work, large))
    # Work too small to measure even at the largest size is bounded: it counts as the
    # smallest measurable amount, so noise cannot pass for growth.
    return max(statistics.median(times[2]), _MEASURABLE_SECONDS) / max(
        statistics.median(times[1]), _MEASURABLE_SECONDS
    )
