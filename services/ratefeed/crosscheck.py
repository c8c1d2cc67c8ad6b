"""Cross-checking one provider's rate against the others' for the same currency and date.

Each currency has a primary provider (its national bank) and independent ones
(the cross rate through the Bank of Russia's rouble rates, or another national
bank's). Two providers disagree when their X/USD rates for the same as-of date
differ by more than the tolerance, relative to the reference. Quotes of
different dates are never compared: a rate moves from one day to the next.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class Candidate:
    """X/USD read from one provider's document, before any decision."""

    provider: str
    base: str
    as_of: date
    rate: Decimal


def gap_pct(rate: Decimal, reference: Decimal) -> Decimal:
    return abs(rate - reference) / reference * 100


def comparable(candidate: Candidate, others: Iterable[Candidate]) -> list[Candidate]:
    return [
        o
        for o in others
        if o.base == candidate.base
        and o.as_of == candidate.as_of
        and o.provider != candidate.provider
    ]


def disagreements(
    candidate: Candidate, references: Iterable[Candidate], tolerance_pct: Decimal
) -> dict[str, Decimal]:
    """Providers whose rate differs beyond the tolerance, with the gap in percent."""
    gaps = {r.provider: gap_pct(candidate.rate, r.rate) for r in references}
    return {provider: gap for provider, gap in gaps.items() if gap > tolerance_pct}


def confirmed(
    candidate: Candidate, references: Iterable[Candidate], tolerance_pct: Decimal
) -> bool:
    """Whether another provider states (within the tolerance) the same rate."""
    return any(gap_pct(candidate.rate, r.rate) <= tolerance_pct for r in references)
