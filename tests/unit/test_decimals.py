"""The bounds of outside numbers: every string is a number within them or a clear refusal,
and the arithmetic the bounds are meant for never leaves the decimal context."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.ratefeed.rates import change_pct
from shared.decimals import (
    AMOUNT,
    CHANGE_PCT,
    PROVIDER_VALUE,
    RATE,
    BadDecimal,
    Bounds,
    parse_within,
    read_within,
    within,
)

ALL_BOUNDS = [AMOUNT, PROVIDER_VALUE, RATE, CHANGE_PCT]
EXTREMES = [
    "NaN",
    "-NaN",
    "sNaN",
    "NaN123",
    "Infinity",
    "-Infinity",
    "inf",
    "1E+999999",
    "9E+999999",
    "-1E+999999",
    "1E-999999",
    "1E-1000026",
    "1E+999999999999",
    "1E+9999999999999999999999",
    "0E+999999",
    "-0",
    "0",
    "0.0",
    "1" * 5000,
    "0." + "0" * 5000 + "1",
    "1." + "0" * 5000 + "1",
    "-5",
    "1e9",
    "1E-9",
    " 42 ",
    "1_000",
    "",
    " ",
    "lots",
    "1,5",
    "0x10",
]
# Modest: the whole suite must stay quick; the strategies aim at the edges.
edgy = settings(max_examples=300, deadline=None)


@st.composite
def decimal_strings(draw: st.DrawFn) -> str:
    """Signs, long digit strings and exponents far past what the context can hold."""
    sign = draw(st.sampled_from(["", "-", "+"]))
    digits = draw(
        st.one_of(
            st.text("0123456789", min_size=1, max_size=40),
            st.integers(1, 3000).map(lambda n: "9" * n),
        )
    )
    point = draw(st.integers(0, len(digits)))
    mantissa = f"{digits[:point]}.{digits[point:]}" if draw(st.booleans()) else digits
    exponent = draw(st.one_of(st.none(), st.integers(-40, 40), st.integers(-(10**20), 10**20)))
    return f"{sign}{mantissa}" + (f"E{exponent:+d}" if exponent is not None else "")


outside_text = st.one_of(
    st.sampled_from(EXTREMES), decimal_strings(), st.decimals().map(str), st.text(max_size=30)
)


def _in(value: Decimal, bounds: Bounds) -> bool:
    return bounds.low <= value <= bounds.high or (bounds.zero and value == 0)


@edgy
@given(outside_text, st.sampled_from(ALL_BOUNDS))
def test_any_text_is_a_number_within_the_bounds_or_a_refusal_naming_them(
    text: str, bounds: Bounds
) -> None:
    refusal = ""
    try:
        value = parse_within(text, bounds)
    except BadDecimal as exc:
        refusal = str(exc)
    if refusal:
        assert bounds.what in refusal
        assert len(refusal) < 200  # a megabyte of digits is not quoted back whole
    else:
        assert value.is_finite()
        assert _in(value, bounds)


@pytest.mark.parametrize("text", ["0", "-0", "0.000", "+0E+999999", "-0E-999999", "0E+99999999999"])
def test_a_zero_amount_comes_back_as_plain_zero(text: str) -> None:
    assert str(parse_within(text, AMOUNT)) == "0"


@pytest.mark.parametrize(
    ("text", "bounds", "message"),
    [
        ("9E+999999", AMOUNT, "amount must be 0 or between 1E-12 and 1E+15, not '9E+999999'"),
        ("-5", AMOUNT, "amount must be 0 or between 1E-12 and 1E+15, not '-5'"),
        ("1E-999999", AMOUNT, "amount must be 0 or between 1E-12 and 1E+15, not '1E-999999'"),
        ("NaN", RATE, "rate must be between 1E-9 and 1E+9, not 'NaN'"),
        ("0", PROVIDER_VALUE, "provider value must be between 1E-9 and 1E+9, not '0'"),
        ("-1E+22", CHANGE_PCT, "change in percent must be between -1E+21 and 1E+21, not '-1E+22'"),
        ("lots", AMOUNT, "amount must be a decimal number, not 'lots'"),
        ("1" * 5000, RATE, f"rate must be between 1E-9 and 1E+9, not '{'1' * 32}...'"),
    ],
)
def test_refusals_say_the_bounds(text: str, bounds: Bounds, message: str) -> None:
    with pytest.raises(BadDecimal) as caught:
        parse_within(text, bounds)
    assert str(caught.value) == message


def test_values_within_are_kept_exactly() -> None:
    assert parse_within(" 1000.50 ", AMOUNT) == Decimal("1000.50")
    assert str(parse_within("0E+999999", AMOUNT)) == "0"
    assert within(Decimal("0.00007846"), RATE) == Decimal("0.00007846")
    assert within(Decimal("-0"), CHANGE_PCT).is_signed()  # the ticker's "-0%" needs the sign


@pytest.mark.parametrize("stored", [None, 1e308, float("inf"), 5, ["1"], {"v": "1"}])
def test_stored_values_must_be_decimal_strings(stored: object) -> None:
    with pytest.raises(BadDecimal, match="decimal string"):
        read_within(stored, RATE)


def _strict() -> decimal.Context:
    """The default context, with every signal that means a lost or absurd result trapped."""
    return decimal.Context(
        traps=[
            decimal.Overflow,
            decimal.Underflow,
            decimal.Subnormal,
            decimal.InvalidOperation,
            decimal.DivisionByZero,
            decimal.Clamped,
        ]
    )


def _decimals_within(bounds: Bounds) -> st.SearchStrategy[Decimal]:
    edges = [bounds.low, bounds.high] + ([Decimal(0)] if bounds.zero else [])
    return st.one_of(
        st.sampled_from(edges),
        st.decimals(
            min_value=bounds.low, max_value=bounds.high, allow_nan=False, allow_infinity=False
        ),
    )


@edgy
@given(_decimals_within(AMOUNT), _decimals_within(RATE), _decimals_within(RATE))
def test_a_conversion_within_the_bounds_stays_in_the_context(
    amount: Decimal, source: Decimal, target: Decimal
) -> None:
    with decimal.localcontext(_strict()):
        result = amount * source / target
    assert result == 0 or Decimal("1E-30") <= result <= Decimal("1E+33")


@edgy
@given(_decimals_within(RATE), _decimals_within(RATE))
# Found by the search: rates equal to 45 places, a change of 9E-53 %.
@example(Decimal("1E+9"), Decimal("999999999." + "9" * 45 + "1"))
def test_a_change_between_rates_within_the_bounds_is_within_its_own(
    rate: Decimal, previous: Decimal
) -> None:
    with decimal.localcontext(_strict()):
        change = change_pct(rate, previous)
        rate.quantize(Decimal("0.00001"))
        change.quantize(Decimal("0.01"))
    assert within(change, CHANGE_PCT) == change


@edgy
@given(
    _decimals_within(PROVIDER_VALUE),
    _decimals_within(PROVIDER_VALUE),
    _decimals_within(PROVIDER_VALUE),
    _decimals_within(PROVIDER_VALUE),
)
def test_rates_from_provider_values_within_the_bounds_stay_in_the_context(
    value: Decimal, nominal: Decimal, usd_value: Decimal, usd_nominal: Decimal
) -> None:
    with decimal.localcontext(_strict()):
        rate = (value / nominal) / (usd_value / usd_nominal)
        inverse = 1 / (value / nominal)  # what a per-base JSON provider computes
    assert Decimal("1E-36") <= rate <= Decimal("1E+36")
    assert Decimal("1E-18") <= inverse <= Decimal("1E+18")


def test_a_zero_written_with_many_places_is_no_rate_and_plain_0_as_a_change() -> None:
    # Past 60 places a zero was 0 whatever the bounds (review): a stored rate of 0E-61
    # was kept, and a conversion divided by it.
    with pytest.raises(BadDecimal, match="rate must be"):
        within(Decimal("0E-61"), RATE)
    assert str(within(Decimal("0E-999"), CHANGE_PCT)) == "0"
    with pytest.raises(BadDecimal, match="more than 60 decimal places"):
        within(Decimal("1E-61"), CHANGE_PCT)
