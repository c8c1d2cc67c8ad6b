"""usd_rates and change_pct: exact Decimal maths on the real CBR numbers (jumps: test_jumps)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from services.ratefeed.parsers.cbr import parse_cbr
from services.ratefeed.providers import OfficialRates, RatesError
from services.ratefeed.rates import change_pct, usd_rates

REALDATA = Path(__file__).resolve().parents[2] / "samples" / "realdata"
CBR_FILE = REALDATA / "cbr-xml-daily-2023-09-27.xml"
CENTRAL_ASIA = ("KGS", "KZT", "TJS", "UZS", "TMT")

# Value and Nominal of each currency in the file (RUB per Nominal units).
V = {
    "USD": Decimal("96.2378"),
    "KZT": Decimal("20.3042"),
    "KGS": Decimal("10.8486"),
    "TJS": Decimal("87.8002"),
    "TMT": Decimal("27.4965"),
    "UZS": Decimal("78.8438"),
}
N = {
    "USD": Decimal(1),
    "KZT": Decimal(100),
    "KGS": Decimal(10),
    "TJS": Decimal(10),
    "TMT": Decimal(1),
    "UZS": Decimal(10000),
}


@pytest.fixture(scope="module")
def official() -> OfficialRates:
    return parse_cbr(CBR_FILE.read_bytes())


@pytest.mark.parametrize("code", CENTRAL_ASIA)
def test_usd_rate_is_exact_ratio_of_per_unit_values(official: OfficialRates, code: str) -> None:
    rates = usd_rates(official, CENTRAL_ASIA)
    assert rates[code] == (V[code] / N[code]) / (V["USD"] / N["USD"])


def test_usd_rates_magnitudes_are_sane(official: OfficialRates) -> None:
    rates = usd_rates(official, CENTRAL_ASIA)
    # Late September 2023: ~89 KGS, ~474 KZT, ~10.9 TJS, ~3.5 TMT, ~12200 UZS to the dollar.
    assert Decimal("0.0110") < rates["KGS"] < Decimal("0.0115")
    assert Decimal("0.00208") < rates["KZT"] < Decimal("0.00214")
    assert Decimal("0.090") < rates["TJS"] < Decimal("0.093")
    assert Decimal("0.284") < rates["TMT"] < Decimal("0.288")
    assert Decimal("0.000080") < rates["UZS"] < Decimal("0.000084")


def test_usd_rates_only_lists_wanted_currencies_present(official: OfficialRates) -> None:
    rates = usd_rates(official, ("KGS", "XXX", "USD"))
    assert set(rates) == {"KGS", "USD"}
    assert rates["USD"] == 1


def test_usd_rates_without_usd_is_an_error() -> None:
    rates = OfficialRates("cbr", "RUB", date(2023, 9, 27), {"KZT": Decimal("0.203042")})
    with pytest.raises(RatesError, match="no USD rate"):
        usd_rates(rates, CENTRAL_ASIA)


@pytest.mark.parametrize(
    ("rate", "previous", "expected"),
    [
        (Decimal("110"), Decimal("100"), Decimal("10")),
        (Decimal("99"), Decimal("100"), Decimal("-1")),
        (Decimal("0.5"), Decimal("0.5"), Decimal("0")),
        (Decimal("0.0003"), Decimal("0.0004"), Decimal("-25")),
    ],
)
def test_change_pct(rate: Decimal, previous: Decimal, expected: Decimal) -> None:
    assert change_pct(rate, previous) == expected


def test_change_pct_is_exact_decimal() -> None:
    rate, previous = Decimal("0.011273"), Decimal("0.011236")
    assert change_pct(rate, previous) == (rate - previous) / previous * 100
