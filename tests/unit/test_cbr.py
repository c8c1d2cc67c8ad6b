"""parse_cbr on the real Bank of Russia XML_daily document of 27.09.2023."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from services.ratefeed.parsers.cbr import parse_cbr
from services.ratefeed.providers import RatesError

REALDATA = Path(__file__).resolve().parents[2] / "samples" / "realdata"
CBR_FILE = REALDATA / "cbr-xml-daily-2023-09-27.xml"

# (Value, Nominal) as printed in the file, comma decimals turned into points.
FILE_VALUES = {
    "USD": ("96.2378", "1"),
    "KZT": ("20.3042", "100"),
    "KGS": ("10.8486", "10"),
    "TJS": ("87.8002", "10"),
    "TMT": ("27.4965", "1"),
    "UZS": ("78.8438", "10000"),
}


@pytest.fixture(scope="module")
def cbr_text() -> str:
    return CBR_FILE.read_text(encoding="utf-8")


def _replace_value(text: str, code: str, new_value: str) -> str:
    """The document with one currency's <Value> replaced."""
    pattern = rf"(<CharCode>{code}</CharCode>.*?<Value>)[^<]*(</Value>)"
    changed, count = re.subn(pattern, rf"\g<1>{new_value}\g<2>", text, count=1, flags=re.S)
    assert count == 1
    return changed


def test_header_fields() -> None:
    rates = parse_cbr(CBR_FILE.read_bytes())
    assert rates.provider == "cbr"
    assert rates.base == "RUB"
    assert rates.as_of == date(2023, 9, 27)


@pytest.mark.parametrize("code", sorted(FILE_VALUES))
def test_per_unit_is_value_over_nominal(code: str) -> None:
    value, nominal = FILE_VALUES[code]
    rates = parse_cbr(CBR_FILE.read_bytes())
    assert rates.per_unit[code] == Decimal(value) / Decimal(nominal)


def test_kzt_per_unit_exact() -> None:
    rates = parse_cbr(CBR_FILE.read_bytes())
    assert rates.per_unit["KZT"] == Decimal("20.3042") / 100
    assert rates.per_unit["KZT"] == Decimal("0.203042")
    assert rates.per_unit["UZS"] == Decimal("0.00788438")


def test_every_valute_is_read_without_problems(cbr_text: str) -> None:
    rates = parse_cbr(CBR_FILE.read_bytes())
    codes = re.findall(r"<CharCode>([A-Z]{3})</CharCode>", cbr_text)
    assert len(codes) == 43
    assert set(rates.per_unit) == set(codes)
    assert rates.problems == []
    assert all(isinstance(v, Decimal) and v > 0 for v in rates.per_unit.values())


def test_windows_1251_document_parses_to_the_same_rates(cbr_text: str) -> None:
    declared = '<?xml version="1.0" encoding="windows-1251"?>\n' + cbr_text
    cp1251 = declared.encode("cp1251")
    assert cp1251 != declared.encode("utf-8")  # the Cyrillic names really are re-encoded
    utf8_rates = parse_cbr(CBR_FILE.read_bytes())
    cp1251_rates = parse_cbr(cp1251)
    assert cp1251_rates.per_unit == utf8_rates.per_unit
    assert cp1251_rates.as_of == utf8_rates.as_of


def test_windows_1251_bytes_without_declaration_are_refused(cbr_text: str) -> None:
    # Without the declaration the bytes are read as UTF-8, which they are not.
    with pytest.raises(RatesError, match="not well-formed XML"):
        parse_cbr(cbr_text.encode("cp1251"))


def test_html_error_page_is_refused() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head>"
        b"<body><h1>Service Unavailable</h1><br></body></html>"
    )
    with pytest.raises(RatesError):
        parse_cbr(page)


def test_well_formed_document_with_another_root_is_refused() -> None:
    with pytest.raises(RatesError, match="root element is 'html'"):
        parse_cbr(b"<html><body><p>Error</p></body></html>")


@pytest.mark.parametrize("content", [b"", b"   ", b"not xml"])
def test_empty_or_garbage_is_refused(content: bytes) -> None:
    with pytest.raises(RatesError):
        parse_cbr(content)


def test_missing_date_attribute_is_refused(cbr_text: str) -> None:
    without_date = cbr_text.replace('Date="27.09.2023" ', "", 1)
    assert "Date=" not in without_date
    with pytest.raises(RatesError, match="no valid Date"):
        parse_cbr(without_date.encode())


@pytest.mark.parametrize("bad_date", ["2023-09-27", "31.02.2023", ""])
def test_invalid_date_attribute_is_refused(cbr_text: str, bad_date: str) -> None:
    changed = cbr_text.replace('Date="27.09.2023"', f'Date="{bad_date}"', 1)
    with pytest.raises(RatesError, match="no valid Date"):
        parse_cbr(changed.encode())


@pytest.mark.parametrize("bad_value", ["0,0000", "-20,3042", "0"])
def test_zero_or_negative_value_is_left_out_with_a_problem(cbr_text: str, bad_value: str) -> None:
    rates = parse_cbr(_replace_value(cbr_text, "KZT", bad_value).encode())
    assert "KZT" not in rates.per_unit
    assert len(rates.problems) == 1
    assert rates.problems[0].startswith("KZT:")
    assert "not positive" in rates.problems[0]
    assert len(rates.per_unit) == 42  # the rest are still read
    assert rates.per_unit["USD"] == Decimal("96.2378")


def test_zero_nominal_is_left_out_with_a_problem(cbr_text: str) -> None:
    changed = cbr_text.replace(
        "<CharCode>KGS</CharCode>\n<Nominal>10</Nominal>",
        "<CharCode>KGS</CharCode>\n<Nominal>0</Nominal>",
        1,
    )
    assert changed != cbr_text
    rates = parse_cbr(changed.encode())
    assert "KGS" not in rates.per_unit
    assert [p for p in rates.problems if p.startswith("KGS:")]


def test_comma_point_mix_is_ambiguous(cbr_text: str) -> None:
    rates = parse_cbr(_replace_value(cbr_text, "TJS", "1.234,5").encode())
    assert "TJS" not in rates.per_unit
    assert rates.problems == ["TJS: '1.234,5' uses '.', but this provider writes decimals with ','"]


@pytest.mark.parametrize("bad_value", ["", "n/a", "12,3x"])
def test_missing_or_non_numeric_value_is_a_problem(cbr_text: str, bad_value: str) -> None:
    rates = parse_cbr(_replace_value(cbr_text, "TMT", bad_value).encode())
    assert "TMT" not in rates.per_unit
    assert len(rates.problems) == 1
    assert rates.problems[0].startswith("TMT:")


def test_thousands_space_and_nbsp_are_tolerated(cbr_text: str) -> None:
    rates = parse_cbr(_replace_value(cbr_text, "USD", "1\u00a0096,2378").encode())
    assert rates.per_unit["USD"] == Decimal("1096.2378")
    rates = parse_cbr(_replace_value(cbr_text, "USD", "1 096,2378").encode())
    assert rates.per_unit["USD"] == Decimal("1096.2378")


def test_bad_char_code_is_a_problem(cbr_text: str) -> None:
    changed = cbr_text.replace("<CharCode>TMT</CharCode>", "<CharCode>tmt</CharCode>", 1)
    rates = parse_cbr(changed.encode())
    assert "TMT" not in rates.per_unit
    assert "tmt" not in rates.per_unit
    assert any("bad currency code 'tmt'" in p for p in rates.problems)


def test_document_with_no_usable_entry_is_refused() -> None:
    doc = (
        '<ValCurs Date="27.09.2023" name="Foreign Currency Market">'
        '<Valute ID="R01235"><CharCode>USD</CharCode><Nominal>1</Nominal>'
        "<Value>0</Value></Valute></ValCurs>"
    )
    with pytest.raises(RatesError, match="no usable Valute"):
        parse_cbr(doc.encode())


def test_nan_value_is_a_problem_not_a_crash(cbr_text: str) -> None:
    rates = parse_cbr(_replace_value(cbr_text, "KZT", "NaN").encode())
    assert "KZT" not in rates.per_unit
    assert any(p.startswith("KZT:") for p in rates.problems)


def test_infinite_value_is_a_problem(cbr_text: str) -> None:
    rates = parse_cbr(_replace_value(cbr_text, "KZT", "Infinity").encode())
    assert "KZT" not in rates.per_unit
    assert any(p.startswith("KZT:") for p in rates.problems)
