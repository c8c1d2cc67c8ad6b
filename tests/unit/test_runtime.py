"""The collector as the services set it once they have started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared.runtime import YOUNG_GENERATION_THRESHOLD, settle_after_startup


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector")
def test_start_up_objects_leave_the_collectors_sight() -> None:
    kept = [[n] for n in range(1000)]  # what start-up made and keeps
    settle_after_startup()
    assert gc.get_freeze_count() >= len(kept)
    # get_objects lists what the collector walks, the frozen ones left out
    assert not any(o is kept for o in gc.get_objects())


@pytest.mark.usefixtures("collector")
def test_the_young_generation_is_collected_less_often() -> None:
    settle_after_startup()
    young, middle, old = gc.get_threshold()
    assert young == YOUNG_GENERATION_THRESHOLD > 700
    assert (middle, old) == (10, 10)
