"""The rate feed's per-provider metrics, as Prometheus scrapes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY

from services.ratefeed import worker
from services.ratefeed.config import Provider
from services.ratefeed.status import ProviderStatus
from services.ratefeed.worker import PROBLEMS_LOGGED, _left_out
from shared.fetch import FetchError
from tests.logs import Said


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


def test_entries_left_out_are_all_counted_and_the_first_few_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 200,000 bad entries in a 2 MiB document were a warning each: 50 MB of log a poll.
    name = f"p{uuid4().hex[:8]}"
    problems = [f"X{n}: not a number" for n in range(1000)]
    said = Said()
    monkeypatch.setattr(worker, "log", said)
    _left_out(name, problems)
    logs = said.lines
    told = [line for line in logs if line["event"] == "rate entry left out"]
    assert [line["detail"] for line in told] == problems[:PROBLEMS_LOGGED]
    rest = [line for line in logs if line["event"] == "more rate entries left out"]
    assert [line["count"] for line in rest] == [1000 - PROBLEMS_LOGGED]
    assert _sample("caravan_ratefeed_left_out_total", name) == 1000
