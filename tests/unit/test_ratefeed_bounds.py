"""Absurd numbers in a rates document: the entry is left out with the bound as its reason,
the rest of the document is used, and nothing between reading and publishing raises."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ratefeed.catalog import detect
from services.ratefeed.jumps import JumpPolicy, assess
from services.ratefeed.parsers.cbr import parse_cbr
from services.ratefeed.parsers.cbu import parse_cbu
from services.ratefeed.parsers.json_rates import JsonRatesSpec, parse_json_rates
from services.ratefeed.parsers.nbk import parse_nbk
from services.ratefeed.parsers.parsing import per_unit_values
from services.ratefeed.providers import OfficialRates, RatesError
from services.ratefeed.rates import LastRate, usd_rates, within_bounds
from shared.decimals import CHANGE_PCT, RATE
from shared.events import QuoteEvent

REALDATA = Path(__file__).resolve().parents[2] / "samples" / "realdata"
CBR_TEXT = (REALDATA / "cbr-xml-daily-2023-09-27.xml").read_text(encoding="utf-8")
NBK_TEXT = (REALDATA / "nbk-rates-all-2016-04-18.xml").read_text(encoding="utf-8")
CENTRAL_ASIA = ("KGS", "KZT", "TJS", "UZS", "TMT")
EXTREMES = [
    "1E+999999",
    "9E+999999",
    "1E-999999",
    "1E+10",
    "1E-10",
    "9" * 5000,
    "0." + "0" * 5000 + "1",
]
POLICY = JumpPolicy(Decimal(5), gap_after_days=3, confirmations=2)
PROVIDER_BOUND = "provider value must be between 1E-9 and 1E+9"


@pytest.mark.parametrize("absurd", EXTREMES)
def test_an_absurd_value_leaves_out_its_currency_only(absurd: str) -> None:
    written = absurd.replace(".", ",")  # the Bank of Russia writes decimal commas
    rates = parse_cbr(
        CBR_TEXT.replace("<Value>20,3042</Value>", f"<Value>{written}</Value>").encode()
    )

    assert "KZT" not in rates.per_unit
    [problem] = rates.problems
    # Thousands of digits are refused before they are read as a number.
    assert problem.startswith((f"KZT: {PROVIDER_BOUND}, not '", "KZT: a number of 5"))
    assert len(problem) < 200
    assert set(usd_rates(rates, CENTRAL_ASIA)) == {"KGS", "TJS", "UZS", "TMT"}


def test_an_absurd_nominal_is_left_out_too() -> None:
    rates = parse_cbr(
        CBR_TEXT.replace("<Nominal>100</Nominal>", "<Nominal>1E+999999</Nominal>", 1).encode()
    )
    assert any(p.endswith(f"{PROVIDER_BOUND}, not '1E+999999'") for p in rates.problems)


def test_point_decimal_documents_are_bounded_alike() -> None:
    rates = parse_nbk(
        NBK_TEXT.replace(
            "<description>4.78</description>", "<description>1E+999999</description>"
        ).encode()
    )
    assert "KGS" not in rates.per_unit
    assert f"KGS: {PROVIDER_BOUND}, not '1E+999999'" in rates.problems


def test_a_json_api_value_is_bounded_before_it_is_inverted() -> None:
    spec = JsonRatesSpec(rates_path="rates", quotation="per_base", base="USD", date_path="date")
    document = json.dumps(
        {"date": "2024-05-02", "rates": {"KZT": 443.9, "UZS": "1E-999999", "KGS": "1E+999999"}}
    ).encode()
    rates = parse_json_rates(document, spec, "my-api")
    assert set(rates.per_unit) == {"KZT"}
    assert len(rates.problems) == 2


def test_rates_outside_their_bounds_are_left_out_with_the_reason() -> None:
    # Each value is within its own bounds; the quotient is not.
    rates = OfficialRates(
        "my-api",
        "XXX",
        date(2024, 5, 2),
        {"USD": Decimal("1E+9"), "KZT": Decimal("1E-9"), "KGS": Decimal("1E+7")},
    )
    kept, problems = within_bounds(usd_rates(rates, CENTRAL_ASIA))
    assert kept == {"KGS": Decimal("0.01")}
    assert problems == ["KZT/USD: rate must be between 1E-9 and 1E+9, not '1E-18'"]


@st.composite
def number_texts(draw: st.DrawFn) -> str:
    return draw(
        st.one_of(
            st.sampled_from([*EXTREMES, "NaN", "Infinity", "-1", "0", "0,5", "1.5", "", "x"]),
            st.decimals(allow_nan=True, allow_infinity=True).map(str),
            st.builds(
                lambda m, e: f"{m}E{e:+d}", st.integers(1, 10**6), st.integers(-(10**7), 10**7)
            ),
        )
    )


entries = st.lists(
    st.tuples(
        st.sampled_from([*CENTRAL_ASIA, "USD", "RUB", "usd"]),
        number_texts(),
        st.one_of(st.none(), number_texts()),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(entries, st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False)))
def test_from_any_numbers_to_a_published_quote_nothing_raises(
    document: list[tuple[str, str, str | None]], stored: Decimal | None
) -> None:
    per_unit, _ = per_unit_values(document, ".")
    try:
        usd = usd_rates(OfficialRates("p", "RUB", date(2024, 5, 2), per_unit), CENTRAL_ASIA)
    except RatesError:
        return  # no USD: the whole document is unusable, and said so
    kept, _ = within_bounds(usd)
    last = LastRate(date(2024, 5, 1), stored) if stored is not None else None
    for base, rate in kept.items():
        assert RATE.low <= rate <= RATE.high
        # The store hands back only rates within the bounds (LastRateStore.get).
        sane_last = last if last is not None and RATE.low <= last.rate <= RATE.high else None
        outcome = assess(sane_last, (), date(2024, 5, 2), rate, False, POLICY)
        [step] = [*outcome.publish, *filter(None, [outcome.held_step])]
        if step.change_pct is not None:
            assert CHANGE_PCT.low <= step.change_pct <= CHANGE_PCT.high
        QuoteEvent(
            base=base,
            rate=rate,
            change_pct=step.change_pct,
            previous_rate=step.previous_rate,
            as_of=date(2024, 5, 2),
            provider="p",
            fetched_at=datetime(2024, 5, 2, tzinfo=UTC),
        )


@pytest.mark.parametrize(
    "value",
    ["1&nbsp;020,3042", "1<!-- 020,3042 -->", "1<?pi x?>020,3042", "1<b>020</b>,3042"],
)
def test_a_value_with_markup_inside_is_refused_not_cut(value: str) -> None:
    # findtext read the text before the first markup: `1&nbsp;020,3042` (an entity a
    # DTD declares, left unresolved) was KZT at 1, a rate a thousand times off.
    document = '<!DOCTYPE ValCurs [<!ENTITY nbsp " ">]>' + CBR_TEXT.replace(
        "<Value>20,3042</Value>", f"<Value>{value}</Value>"
    )
    rates = parse_cbr(document.encode())
    assert "KZT" not in rates.per_unit
    [problem] = rates.problems
    assert problem.startswith("KZT: not a number: '1<…>")
    assert set(usd_rates(rates, CENTRAL_ASIA)) == {"KGS", "TJS", "UZS", "TMT"}


def test_a_json_rate_written_twice_differently_is_left_out_and_a_huge_one_alone() -> None:
    # The last of two values won, silently; an integer of 5,000 digits made the whole
    # document "not JSON".
    spec = JsonRatesSpec(rates_path="rates", quotation="per_base", base="USD", date_path="date")
    document = (
        b'{"date": "2024-05-02", "rates": {"KZT": 443.9, "KZT": 4.439, "UZS": 12650, '
        b'"UZS": 12650, "KGS": ' + b"9" * 5000 + b', "TJS": 10.93}}'
    )
    rates = parse_json_rates(document, spec, "my-api")
    assert set(rates.per_unit) == {"UZS", "TJS"}  # the same value twice is no conflict
    assert sorted(problem.split(":")[0] for problem in rates.problems) == ["KGS", "KZT"]
    assert "KZT: not a number: '<written_twice_differently>'" in rates.problems


def test_a_json_number_no_decimal_holds_is_one_value_left_out() -> None:
    # Decimal raised InvalidOperation (an ArithmeticError, not a ValueError) for it: one
    # currency nobody asked for lost every rate of the document, and `caravan ratefeed
    # --source` ended in a traceback.
    huge = b"1e99999999999999999999"
    real = (REALDATA / "cbu-uz-rates-2022-04-11.json").read_bytes().rstrip()
    document = real[:-1] + b',{"Ccy": "XAU", "Nominal": "1", "Rate": ' + huge + b', "Date": '
    document += json.dumps(json.loads(real)[0]["Date"]).encode() + b"}]"
    assert detect(document) == "cbu"
    rates = parse_cbu(document)
    assert set(rates.per_unit) == set(parse_cbu(real).per_unit)
    assert rates.problems == ["XAU: not a number: '<a_number_past_any_decimal>'"]
    spec = JsonRatesSpec(rates_path="rates", quotation="per_base", base="USD", date_path="date")
    api = b'{"date": "2024-05-02", "rates": {"KZT": 443.9, "XAU": ' + huge + b"}}"
    assert set(parse_json_rates(api, spec, "my-api").per_unit) == {"KZT"}


@pytest.mark.parametrize("code", ["KZT<!--x-->ZZ", "KZT<b>X</b>", "K<!-- -->ZT"])
def test_a_currency_code_with_markup_inside_is_refused_not_cut(code: str) -> None:
    # findtext read the text before the first markup: `KZT<!--x-->ZZ` was KZT, which
    # another entry of the document could then stand in for.
    document = CBR_TEXT.replace("<CharCode>KZT</CharCode>", f"<CharCode>{code}</CharCode>")
    rates = parse_cbr(document.encode())
    assert "KZT" not in rates.per_unit
    assert set(usd_rates(rates, CENTRAL_ASIA)) == {"KGS", "TJS", "UZS", "TMT"}
