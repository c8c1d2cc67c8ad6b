"""Cross-checks, as-of dates, staleness and the providers file: pure rules, real numbers."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.ratefeed.asof import check_as_of, days, local_today, stale_after
from services.ratefeed.config import RatesConfig, load_rates_config
from services.ratefeed.crosscheck import Candidate, comparable, confirmed, disagreements, gap_pct
from services.ratefeed.parsers.cbr import parse_cbr
from services.ratefeed.parsers.cbu import parse_cbu
from services.ratefeed.peg import Peg, pegged_rates
from services.ratefeed.providers import OfficialRates, RatesError
from services.ratefeed.rates import usd_rates
from services.ratefeed.status import ProviderStatus
from shared.configfiles import ConfigFileError
from shared.fetch import FetchError
from shared.settings import LONGEST_INTERVAL_SECONDS

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
REALDATA = SAMPLES / "realdata"
TMT_PEG = Peg(currency="TMT", per_usd=Decimal("3.5"), since=date(2015, 1, 1))


def _tmt(provider: str, rates: OfficialRates) -> Candidate:
    return Candidate(provider, "TMT", rates.as_of, usd_rates(rates, ("TMT",))["TMT"])


def test_the_peg_and_the_uzbek_cross_rate_of_the_manat_agree_within_a_percent() -> None:
    cbu = parse_cbu((REALDATA / "cbu-uz-rates-2022-04-11.json").read_bytes())
    from_cbu = _tmt("cbu", cbu)
    from_peg = _tmt("cbt", pegged_rates("cbt", TMT_PEG, cbu.as_of))
    gap = gap_pct(from_cbu.rate, from_peg.rate)
    # 3245.98 / 11344.69 UZS against 1 / 3.5: the CBU quotes the manat at 3.495 per dollar.
    assert Decimal("0.14") < gap < Decimal("0.15")
    assert disagreements(from_cbu, [from_peg], Decimal("1")) == {}
    assert disagreements(from_cbu, [from_peg], Decimal("0.1")) == {"cbt": gap}
    assert confirmed(from_cbu, [from_peg], Decimal("1"))
    assert not confirmed(from_cbu, [from_peg], Decimal("0.1"))


def test_the_bank_of_russia_cross_rate_of_the_manat_is_the_peg() -> None:
    cbr = parse_cbr((REALDATA / "cbr-xml-daily-2023-09-27.xml").read_bytes())
    gap = gap_pct(_tmt("cbr", cbr).rate, _tmt("cbt", pegged_rates("cbt", TMT_PEG, cbr.as_of)).rate)
    assert gap < Decimal("0.0001")


def test_only_other_providers_of_the_same_currency_and_date_are_compared() -> None:
    day = date(2023, 9, 27)
    candidate = Candidate("nbk", "KZT", day, Decimal("0.0021"))
    others = [
        Candidate("cbr", "KZT", day, Decimal("0.0022")),
        Candidate("cbr", "KZT", date(2023, 9, 26), Decimal("0.0021")),
        Candidate("cbr", "KGS", day, Decimal("0.0021")),
        Candidate("nbk", "KZT", day, Decimal("0.0021")),
    ]
    assert comparable(candidate, others) == [others[0]]


def test_future_dates_beyond_the_lead_are_refused() -> None:
    rates = OfficialRates("cbr", "RUB", date(2023, 9, 28), {"USD": Decimal("96.2378")})
    check_as_of(rates, date(2023, 9, 27), max_lead_days=1)  # tomorrow's, as CBR does
    with pytest.raises(RatesError, match="as-of date 2023-09-28 is in the future"):
        check_as_of(rates, date(2023, 9, 27), max_lead_days=0)


@pytest.mark.parametrize("day", [date(1, 1, 3), date(1992, 6, 30)])
def test_dates_before_any_official_rate_are_refused(day: date) -> None:
    # Year 1 once got through, and its catch-up's date arithmetic stopped the rate feed.
    rates = OfficialRates("cbr", "RUB", day, {"USD": Decimal("96.2378")})
    with pytest.raises(RatesError, match="is before any official rate"):
        check_as_of(rates, date(2023, 9, 27), max_lead_days=1)
    check_as_of(replace(rates, as_of=date(1992, 7, 1)), date(2023, 9, 27), max_lead_days=1)


def test_today_is_the_providers_own_calendar_day() -> None:
    late_evening_utc = datetime(2023, 9, 27, 21, 30, tzinfo=UTC)
    assert local_today("Europe/Moscow", late_evening_utc) == date(2023, 9, 28)
    assert local_today("UTC", late_evening_utc) == date(2023, 9, 27)


def test_days_and_stale_after() -> None:
    assert list(days(date(2023, 9, 29), date(2023, 10, 1))) == [
        date(2023, 9, 29),
        date(2023, 9, 30),
        date(2023, 10, 1),
    ]
    assert stale_after(date(2023, 9, 29), 4) == date(2023, 10, 3)


def test_the_bundled_providers_file_loads_with_absolute_sample_paths() -> None:
    config = load_rates_config(SAMPLES / "rates.toml")
    names = [p.name for p in config.providers]
    assert names == ["cbr", "nbk", "nbkr", "cbu", "cbt"]
    assert set(config.primary) == {"KGS", "KZT", "TJS", "UZS", "TMT"}
    for provider in config.providers:
        assert provider.url is None or Path(provider.url).is_file()
    cbt = config.provider("cbt")
    assert cbt is not None
    assert cbt.peg == TMT_PEG
    assert config.crosscheck.tolerance_pct == Decimal("1.0")


def test_a_primary_that_is_not_configured_is_refused() -> None:
    with pytest.raises(ValidationError, match="primary providers not configured"):
        RatesConfig.model_validate(
            {"primary": {"KZT": "nbk"}, "providers": [{"name": "cbr", "kind": "cbr", "url": "x"}]}
        )


def test_a_provider_needs_what_its_kind_reads() -> None:
    with pytest.raises(ValidationError, match="peg"):
        RatesConfig.model_validate({"providers": [{"name": "cbt", "kind": "peg"}]})
    with pytest.raises(ValidationError, match="time zone"):
        RatesConfig.model_validate(
            {"providers": [{"name": "cbr", "kind": "cbr", "url": "x", "timezone": "Mars/Olympus"}]}
        )


def test_status_marks_a_provider_stale_after_its_cadence() -> None:
    config = load_rates_config(SAMPLES / "rates.toml")
    status = ProviderStatus(config.providers)
    status.read("cbr", date(2023, 9, 27))
    status.failed("nbk", FetchError("https://…: HTTP 503"))
    details = status.details(datetime(2023, 10, 1, 12, tzinfo=UTC))
    assert details["cbr"] == {"as_of": "2023-09-27", "stale": False, "error": None}
    assert details["nbk"] == {"as_of": None, "stale": True, "error": "https://…: HTTP 503"}
    later = status.details(datetime(2023, 10, 2, 12, tzinfo=UTC))
    assert later["cbr"]["stale"]


@pytest.mark.parametrize(
    "field",
    [
        "interval = inf",
        f"interval = {LONGEST_INTERVAL_SECONDS + 1}",
        "stale_after_days = 10000000",
        "max_lead_days = 10000000",
    ],
)
def test_a_provider_s_periods_are_bounded(field: str) -> None:
    # An infinite interval or a ten-million-day period crashed the feed (OverflowError).
    text = f'[[providers]]\nname = "p"\nkind = "cbr"\nurl = "x.xml"\n{field}\n'
    with pytest.raises(ValidationError):
        RatesConfig.model_validate(tomllib.loads(text))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "providers: Field required"),
        ('[[providers]]\nname = "p"\nkind = "cbr"\nurl = "x"\ninterval = "300s"\n', "interval"),
        ('[[providers]]\nname = "p"\nname = "q"\n', "not TOML"),
    ],
)
def test_a_providers_file_error_names_its_variable_and_path(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "rates.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigFileError) as raised:
        load_rates_config(path)
    assert str(raised.value).startswith(f"CARAVAN_RATEFEED_PROVIDERS={path}: ")
    assert problem in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_provider_error_in_the_readiness_details_is_bounded() -> None:
    # A rates document's text in the error (a name, a namespace) was megabytes in /readyz.
    status = ProviderStatus(load_rates_config(SAMPLES / "rates.toml").providers)
    status.failed("nbk", RatesError("not a rates document: " + "x" * 1_900_000))
    error = status.details(datetime(2023, 10, 1, 12, tzinfo=UTC))["nbk"]["error"]
    assert error.startswith("not a rates document: xxx")
    assert error.endswith("(1900022 characters)")
    assert len(error) < 1100
