"""A provider that failed is counted and polled again sooner than its interval."""

from __future__ import annotations

from datetime import date

from services.ratefeed.status import ProviderStatus
from shared.fetch import FetchError


def test_failures_in_a_row_are_counted_until_a_good_read() -> None:
    status = ProviderStatus([])
    status.failed("nbk", RecursionError("maximum recursion depth exceeded"))
    status.failed("nbk", FetchError("HTTP 503"))
    assert status.failures("nbk") == 2
    assert status.failures("cbr") == 0
    status.read("nbk", date(2026, 12, 4))
    assert status.failures("nbk") == 0
