"""What each provider last produced, for readiness details: as-of date, staleness, last error.

Staleness is not unreadiness: restarting the rate feed does not make a bank
publish, so a stale provider is reported in the details and the service stays
ready while Redis is reachable.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from services.ratefeed.asof import local_today, stale_after
from services.ratefeed.config import Provider


class ProviderStatus:
    def __init__(self, providers: list[Provider]) -> None:
        self._providers = providers
        self._as_of: dict[str, date] = {}
        self._errors: dict[str, str] = {}

    def read(self, provider: str, as_of: date) -> None:
        self._as_of[provider] = max(as_of, self._as_of.get(provider, as_of))
        self._errors.pop(provider, None)

    def failed(self, provider: str, error: str) -> None:
        self._errors[provider] = error

    def details(self, now: datetime) -> dict[str, dict[str, Any]]:
        details: dict[str, dict[str, Any]] = {}
        for provider in self._providers:
            as_of = self._as_of.get(provider.name)
            today = local_today(provider.timezone, now)
            details[provider.name] = {
                "as_of": as_of.isoformat() if as_of else None,
                "stale": as_of is None or today > stale_after(as_of, provider.stale_after_days),
                "error": self._errors.get(provider.name),
            }
        return details
