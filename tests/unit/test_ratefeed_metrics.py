"""The rate feed's per-provider metrics, as Prometheus scrapes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from prometheus_client import REGISTRY

from services.ratefeed.config import Provider
from services.ratefeed.status import ProviderStatus
from shared.fetch import FetchError


def _sample(name: str, provider: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"provider": provider})


def test_staleness_and_last_read_and_error_times_are_exported() -> None:
    name = f"p{uuid4().hex[:8]}"
    provider = Provider.model_validate(
        {"name": name, "kind": "cbr", "url": "x", "stale_after_days": 2}
    )
    status = ProviderStatus([provider])

    assert _sample("caravan_ratefeed_stale", name) == 1.0  # nothing read yet
    status.read(name, datetime.now(UTC).date())
    assert _sample("caravan_ratefeed_stale", name) == 0.0
    assert (_sample("caravan_ratefeed_last_success_timestamp_seconds", name) or 0) > 0

    status.failed(name, FetchError("timed out"))
    assert (_sample("caravan_ratefeed_last_error_timestamp_seconds", name) or 0) > 0
    assert status.details(datetime.now(UTC))[name]["error"] == "timed out"
    later = datetime.now(UTC) + timedelta(days=10)
    assert status.details(later)[name]["stale"] is True
