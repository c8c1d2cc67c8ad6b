"""What one poll of a source leaves in the metrics the failing-source alert reads."""

from __future__ import annotations

from typing import cast

from prometheus_client import REGISTRY

from services.ingest.schedule import poll_safely
from services.ingest.sources import Source
from services.ingest.worker import Ingestor
from shared.leases import LeaseLost


class _Taken:
    """An ingestor whose poll finds the source's lease taken by another replica."""

    async def poll(self, source: Source) -> None:
        raise LeaseLost(f"lease:{source.name}")


def _sample(name: str, labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_a_lease_lost_mid_poll_is_no_error_of_the_source() -> None:
    # The replica that took the source over succeeds; this one's error time would
    # have outlived that success in the alert, which takes the latest of each.
    source = Source(name="taken-over", url="https://invented.example/feed")
    result = await poll_safely(cast("Ingestor", _Taken()), source)
    assert result.error is not None
    assert _sample("caravan_ingest_last_error_timestamp_seconds", {"source": source.name}) is None
    labels = {"source": source.name, "outcome": "lease_lost"}
    assert _sample("caravan_ingest_polls_total", labels) == 1
