"""What a provider parser returns: one document's official rates, in the provider's own base."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal


class RatesError(ValueError):
    """The document is not a rates document of the expected provider."""


class WrongFormat(RatesError):
    """The document is of another kind than the parser reads (how providers are detected)."""


@dataclass(frozen=True)
class OfficialRates:
    provider: str
    base: str
    """The currency the provider quotes in (RUB for the Bank of Russia)."""
    as_of: date
    """The date the rates take effect, as the provider states it."""
    per_unit: dict[str, Decimal]
    """Value of one unit of each currency, in `base`."""
    problems: list[str] = field(default_factory=list)
    """Entries that were left out, and why."""
