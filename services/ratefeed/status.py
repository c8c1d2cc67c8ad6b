"""What each provider last produced, for readiness details: as-of date, staleness, last error.

Staleness is not unreadiness: restarting the rate feed does not make a bank
publish, so a stale provider is reported in the details and the service stays
ready while Redis is reachable.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from services.ratefeed import metrics
from services.ratefeed.asof import local_today, stale_after
from services.ratefeed.config import Provider
from shared.logging import shortened


class ProviderStatus:
    def __init__(self, providers: list[Provider]) -> None:
        self._providers = providers
        self._as_of: dict[str, date] = {}
        self._errors: dict[str, str] = {}
        self._failures: dict[str, int] = {}  # failed polls in a row
        for provider in providers:
            # Worked out at scrape time: a provider goes stale as days pass, not on a poll.
            metrics.STALE.labels(provider.name).set_function(partial(self._stale_now, provider))

    def read(self, provider: str, as_of: date) -> None:
        self._as_of[provider] = max(as_of, self._as_of.get(provider, as_of))
        self._errors.pop(provider, None)
        self._failures.pop(provider, None)
        metrics.LAST_SUCCESS.labels(provider).set_to_current_time()

    def failed(self, provider: str, error: BaseException) -> None:
        # A document's text may be in it (a name, a namespace): megabytes in /readyz.
        self._errors[provider] = shortened(str(error))
        self._failures[provider] = self._failures.get(provider, 0) + 1
        metrics.LAST_ERROR.labels(provider).set_to_current_time()
        metrics.POLL_ERRORS.labels(provider, type(error).__name__).inc()

    def failures(self, provider: str) -> int:
        """The provider's failed polls since its last good one."""
        return self._failures.get(provider, 0)

    def details(self, now: datetime) -> dict[str, dict[str, Any]]:
        details: dict[str, dict[str, Any]] = {}
        for provider in self._providers:
            as_of = self._as_of.get(provider.name)
            details[provider.name] = {
                "as_of": as_of.isoformat() if as_of else None,
                "stale": self._stale(provider, now),
                "error": self._errors.get(provider.name),
            }
        return details

    def _stale_now(self, provider: Provider) -> float:
        return float(self._stale(provider, datetime.now(UTC)))

    def _stale(self, provider: Provider, now: datetime) -> bool:
        as_of = self._as_of.get(provider.name)
        today = local_today(provider.timezone, now)
        return as_of is None or today > stale_after(as_of, provider.stale_after_days)
