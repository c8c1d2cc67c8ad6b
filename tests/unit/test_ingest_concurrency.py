"""A document's articles read several at once (services/ingest/worker.py, read_all):
never more than the bound, every one of them, and an error ending the poll as it did
when they were read one after another; synchronised on events, never on time. And how
often the articles in flight read the consumers' lag (backpressure.py)."""

from __future__ import annotations

import asyncio

import pytest

from services.ingest.backpressure import unread_allowance
from services.ingest.worker import read_all


class Reads:
    """Reads that each wait to be let go; what was started, finished, and how many at once."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.finished: list[int] = []
        self.in_flight = 0
        self.most = 0
        self.go: dict[int, asyncio.Event] = {}
        self.changed = asyncio.Condition()

    async def read(self, item: int) -> None:
        self.started.append(item)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        async with self.changed:
            self.changed.notify_all()
        try:
            await self.go.setdefault(item, asyncio.Event()).wait()
            if item < 0:
                raise ValueError(f"item {item} is bad")
        finally:
            self.in_flight -= 1
        self.finished.append(item)

    async def until_started(self, count: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.started) >= count)

    def release(self, item: int) -> None:
        self.go.setdefault(item, asyncio.Event()).set()


async def test_items_are_read_at_once_up_to_the_bound_in_order_and_all_of_them() -> None:
    reads = Reads()
    task = asyncio.create_task(read_all(list(range(10)), reads.read, 3))

    await reads.until_started(3)
    assert reads.started == [0, 1, 2]  # three at once, the first three
    reads.release(1)  # a later one finishing first frees its slot for the next item
    await reads.until_started(4)
    assert (reads.started, reads.in_flight) == ([0, 1, 2, 3], 3)
    for item in range(10):
        reads.release(item)
    await task

    assert sorted(reads.finished) == list(range(10))
    assert reads.started == list(range(10))
    assert reads.most == 3


async def test_a_short_document_starts_no_more_readers_than_it_has_items() -> None:
    reads = Reads()
    for item in range(2):
        reads.release(item)

    await read_all([0, 1], reads.read, 8)
    await read_all([], reads.read, 8)

    assert reads.finished == [0, 1]


async def test_one_at_a_time_is_the_sequential_reading() -> None:
    reads = Reads()
    task = asyncio.create_task(read_all([0, 1, 2], reads.read, 1))
    for item in range(3):
        await reads.until_started(item + 1)
        assert reads.in_flight == 1
        reads.release(item)
    await task

    assert reads.finished == [0, 1, 2]


async def test_an_error_lets_the_reads_in_hand_finish_starts_no_other_and_is_raised() -> None:
    reads = Reads()
    task = asyncio.create_task(read_all([0, -1, 2, 3, 4, 5], reads.read, 3))
    await reads.until_started(3)

    reads.release(-1)  # fails while 0 and 2 are still being read
    reads.release(0)
    reads.release(2)
    with pytest.raises(ValueError, match="item -1 is bad"):
        await task

    assert reads.started == [0, -1, 2]
    assert sorted(reads.finished) == [0, 2]  # finished, not abandoned


async def test_cancelling_the_poll_cancels_its_reads() -> None:
    reads = Reads()
    task = asyncio.create_task(read_all(list(range(5)), reads.read, 2))
    await reads.until_started(2)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert (reads.in_flight, reads.finished, reads.started) == (0, [], [0, 1])


@pytest.mark.parametrize(
    ("lag", "max_lag", "allowance"),
    [
        (0, 30, 15),  # half the room: other replicas publish into it too
        (29, 30, 0),  # one article of room: read before each
        (30, 30, 0),
        (0, 100_000, 100),  # never more than a hundred articles unread
        (99_900, 100_000, 50),
    ],
)
def test_the_lag_is_read_again_before_the_room_left_could_run_out(
    lag: int, max_lag: int, allowance: int
) -> None:
    assert unread_allowance(lag, max_lag) == allowance
