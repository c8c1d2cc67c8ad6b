"""usd_rates, change_pct and decide(): exact Decimal maths on the real CBR numbers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from services.ratefeed.cbr import parse_cbr
from services.ratefeed.providers import OfficialRates, RatesError
from services.ratefeed.rates import LastRate, change_pct, decide, usd_rates

REALDATA = Path(__file__).resolve().parents[2] / "samples" / "realdata"
CBR_FILE = REALDATA / "cbr-xml-daily-2023-09-27.xml"
CENTRAL_ASIA = ("KGS", "KZT", "TJS", "UZS", "TMT")

# Value and Nominal of each currency in the file (RUB per Nominal units).
V = {"USD": Decimal("96.2378"), "KZT": Decimal("20.3042"), "KGS": Decimal("10.8486"),
     "TJS": Decimal("87.8002"), "TMT": Decimal("27.4965"), "UZS": Decimal("78.8438")}
N = {"USD": Decimal(1), "KZT": Decimal(100), "KGS": Decimal(10), "TJS": Decimal(10),
     "TMT": Decimal(1), "UZS": Decimal(10000)}


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


# --- decide(): the five cases of its docstring -------------------------------------------

DAY1, DAY2, DAY3 = date(2023, 9, 26), date(2023, 9, 27), date(2023, 9, 28)


def test_first_rate_is_published_without_change() -> None:
    decision = decide(None, DAY2, Decimal("0.0112"))
    assert decision.publish
    assert decision.previous_rate is None
    assert decision.change_pct is None
    assert decision.store == LastRate(DAY2, Decimal("0.0112"))


def test_newer_date_is_published_with_change_against_last() -> None:
    last = LastRate(DAY1, Decimal("100"))
    decision = decide(last, DAY2, Decimal("101"))
    assert decision.publish
    assert decision.previous_rate == Decimal("100")
    assert decision.change_pct == Decimal("1")
    assert decision.store == LastRate(DAY2, Decimal("101"), DAY1, Decimal("100"))


@pytest.mark.parametrize("same", [Decimal("101"), Decimal("101.000")])
def test_same_date_same_rate_is_not_published(same: Decimal) -> None:
    last = LastRate(DAY2, Decimal("101"), DAY1, Decimal("100"))
    decision = decide(last, DAY2, same)
    assert not decision.publish
    assert decision.store is None
    assert decision.change_pct is None


def test_same_date_corrected_rate_changes_against_the_day_before() -> None:
    last = LastRate(DAY2, Decimal("101"), DAY1, Decimal("100"))
    decision = decide(last, DAY2, Decimal("102"))
    assert decision.publish
    assert decision.previous_rate == Decimal("100")
    assert decision.change_pct == Decimal("2")
    # The day before is kept, so a second correction still compares with it.
    assert decision.store == LastRate(DAY2, Decimal("102"), DAY1, Decimal("100"))


def test_same_date_correction_of_a_first_rate_has_no_change() -> None:
    decision = decide(LastRate(DAY2, Decimal("101")), DAY2, Decimal("102"))
    assert decision.publish
    assert decision.previous_rate is None
    assert decision.change_pct is None
    assert decision.store == LastRate(DAY2, Decimal("102"))


def test_older_date_is_published_for_history_without_touching_the_store() -> None:
    last = LastRate(DAY3, Decimal("103"), DAY2, Decimal("102"))
    decision = decide(last, DAY1, Decimal("100"))
    assert decision.publish
    assert decision.previous_rate is None
    assert decision.change_pct is None
    assert decision.store is None


def test_sequence_of_days_from_the_real_document(official: OfficialRates) -> None:
    kgs = usd_rates(official, ("KGS",))["KGS"]
    first = decide(None, DAY2, kgs)
    assert first.store is not None
    repoll = decide(first.store, DAY2, kgs)
    assert not repoll.publish
    bumped = kgs * Decimal("1.01")
    next_day = decide(first.store, DAY3, bumped)
    assert next_day.publish
    assert next_day.change_pct is not None
    assert next_day.change_pct == (bumped - kgs) / kgs * 100
    assert next_day.change_pct.quantize(Decimal("0.0001")) == Decimal("1.0000")
