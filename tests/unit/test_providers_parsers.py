"""Each provider parser on its real published document, and on the ways documents go wrong."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from services.ratefeed.catalog import DOCUMENT_PARSERS, detect, parse_document
from services.ratefeed.config import Provider
from services.ratefeed.parsers.cbr import parse_cbr
from services.ratefeed.parsers.cbu import parse_cbu
from services.ratefeed.parsers.json_rates import JsonRatesSpec, parse_json_rates
from services.ratefeed.parsers.nbk import parse_nbk
from services.ratefeed.parsers.nbkr import parse_nbkr
from services.ratefeed.parsers.nbt import parse_nbt
from services.ratefeed.parsers.parsing import official_decimal, per_unit_values
from services.ratefeed.peg import Peg, pegged_rates
from services.ratefeed.providers import OfficialRates, RatesError, WrongFormat
from services.ratefeed.rates import usd_rates

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
REALDATA = SAMPLES / "realdata"
NBK_FILE = REALDATA / "nbk-rates-all-2016-04-18.xml"
NBKR_FILE = REALDATA / "nbkr-daily-2020-12-14.xml"
CBU_FILE = REALDATA / "cbu-uz-rates-2022-04-11.json"
NBK_DERIVED_FILE = REALDATA / "nbk-derived-rates-2023-11-18.json"
# Hand-written in the NBT export's shape: no captured NBT document is available.
NBT_FIXTURE = SAMPLES / "fixtures" / "nbt-daily-2023-09-27.xml"
CENTRAL_ASIA = ("KGS", "KZT", "TJS", "UZS", "TMT")


# --- National Bank of Kazakhstan --------------------------------------------------------


def test_nbk_reads_kzt_per_quant_units_as_of_the_common_item_date() -> None:
    rates = parse_nbk(NBK_FILE.read_bytes())
    assert (rates.provider, rates.base, rates.as_of) == ("nbk", "KZT", date(2016, 4, 18))
    assert rates.per_unit["USD"] == Decimal("334.41")
    assert rates.per_unit["UZS"] == Decimal("11.59") / 100  # quant 100
    assert rates.per_unit["KGS"] == Decimal("4.78")


def test_nbk_leaves_out_currencies_dated_years_ago() -> None:
    rates = parse_nbk(NBK_FILE.read_bytes())
    # LVL (31.12.13), EEK (31.12.10) and TRL (05.01.05) are kept in the feed with old dates.
    assert not {"LVL", "EEK", "TRL"} & set(rates.per_unit)
    assert rates.problems == ["3 items dated other than 2016-04-18 left out"]


def test_nbk_item_without_a_valid_date_is_left_out_not_the_document() -> None:
    text = NBK_FILE.read_text(encoding="utf-8")
    usd = text.index("<title>USD</title>")
    broken = text[:usd] + text[usd:].replace(
        "<pubDate>18.04.16</pubDate>", "<pubDate>31.02.16</pubDate>", 1
    )
    rates = parse_nbk(broken.encode())
    assert "USD" not in rates.per_unit
    assert rates.per_unit["KGS"] == Decimal("4.78")
    assert rates.problems == [
        "1 items without a valid date left out",
        "3 items dated other than 2016-04-18 left out",
    ]


def test_nbk_without_any_valid_date_is_refused() -> None:
    text = NBK_FILE.read_text(encoding="utf-8")
    with pytest.raises(RatesError, match="no valid date"):
        parse_nbk(re.sub(r"<pubDate>[^<]*</pubDate>", "<pubDate>soon</pubDate>", text).encode())


def test_nbk_usd_rates_put_its_own_currency_at_one_over_the_dollar() -> None:
    usd = usd_rates(parse_nbk(NBK_FILE.read_bytes()), CENTRAL_ASIA)
    assert usd["KZT"] == 1 / Decimal("334.41")
    assert usd["UZS"] == (Decimal("11.59") / 100) / Decimal("334.41")
    assert "TMT" not in usd


def test_nbk_by_date_shape_is_read_too() -> None:
    doc = (
        "<rates><date>18.04.2016</date><item><fullname>US Dollar</fullname>"
        "<title>USD</title><description>334.41</description><quant>1</quant></item>"
        "</rates>"
    )
    rates = parse_nbk(doc.encode())
    assert (rates.as_of, rates.per_unit) == (date(2016, 4, 18), {"USD": Decimal("334.41")})


# --- National Bank of the Kyrgyz Republic -----------------------------------------------


def test_nbkr_reads_kgs_per_nominal_with_comma_decimals() -> None:
    rates = parse_nbkr(NBKR_FILE.read_bytes())
    assert (rates.provider, rates.base, rates.as_of) == ("nbkr", "KGS", date(2020, 12, 14))
    assert rates.per_unit == {
        "USD": Decimal("84.7999"),
        "EUR": Decimal("102.8623"),
        "KZT": Decimal("0.2024"),
        "RUB": Decimal("1.1597"),
    }
    usd = usd_rates(rates, CENTRAL_ASIA)
    assert usd == {"KGS": 1 / Decimal("84.7999"), "KZT": Decimal("0.2024") / Decimal("84.7999")}


def test_nbkr_windows_1251_bytes_are_decoded_as_declared() -> None:
    text = NBKR_FILE.read_text(encoding="utf-8").replace("Daily Exchange Rates", "Курсы валют")
    assert parse_nbkr(text.encode("windows-1251")).per_unit["USD"] == Decimal("84.7999")


# --- Central Bank of Uzbekistan ---------------------------------------------------------


def test_cbu_reads_uzs_per_nominal_from_string_numbers() -> None:
    rates = parse_cbu(CBU_FILE.read_bytes())
    assert (rates.provider, rates.base, rates.as_of) == ("cbu", "UZS", date(2022, 4, 11))
    assert len(rates.per_unit) == 75
    assert rates.per_unit["USD"] == Decimal("11344.69")
    assert rates.per_unit["IDR"] == Decimal("7.90") / 10  # "Nominal": "10"
    usd = usd_rates(rates, CENTRAL_ASIA)
    assert usd["UZS"] == 1 / Decimal("11344.69")
    assert usd["TMT"] == Decimal("3245.98") / Decimal("11344.69")
    assert set(usd) == set(CENTRAL_ASIA)


def test_cbu_entry_with_another_date_is_left_out() -> None:
    entries = json.loads(CBU_FILE.read_bytes())
    for entry in entries:
        if entry["Ccy"] == "KZT":
            entry["Date"] = "08.04.2022"
    rates = parse_cbu(json.dumps(entries).encode())
    assert "KZT" not in rates.per_unit
    assert rates.problems == ["1 entries dated other than 2022-04-11 left out"]


def test_cbu_entry_without_a_valid_date_is_left_out_not_the_document() -> None:
    entries = json.loads(CBU_FILE.read_bytes())
    for entry in entries:
        if entry["Ccy"] == "KZT":
            entry["Date"] = "31.02.2022"
        if entry["Ccy"] == "KGS":
            del entry["Date"]
    rates = parse_cbu(json.dumps(entries).encode())
    assert not {"KZT", "KGS"} & set(rates.per_unit)
    assert len(rates.per_unit) == 73
    assert rates.problems == ["2 entries without a valid Date left out"]


def test_cbu_without_any_valid_date_is_refused() -> None:
    entries = [entry | {"Date": "2022-04-11"} for entry in json.loads(CBU_FILE.read_bytes())]
    with pytest.raises(RatesError, match="no valid Date"):
        parse_cbu(json.dumps(entries).encode())


# --- National Bank of Tajikistan (fixture, not a captured document) ---------------------


def test_nbt_fixture_reads_tjs_per_nominal() -> None:
    rates = parse_nbt(NBT_FIXTURE.read_bytes())
    assert (rates.provider, rates.base, rates.as_of) == ("nbt", "TJS", date(2023, 9, 27))
    assert rates.per_unit["UZS"] == Decimal("0.8979") / 1000
    assert usd_rates(rates, ("TJS",))["TJS"] == 1 / Decimal("10.9430")


def test_nbt_refuses_a_bank_of_russia_document() -> None:
    with pytest.raises(WrongFormat, match="Bank of Russia currency IDs"):
        parse_nbt((REALDATA / "cbr-xml-daily-2023-09-27.xml").read_bytes())


# --- Central Bank of Turkmenistan: the peg ----------------------------------------------

TMT_PEG = Peg(currency="TMT", per_usd=Decimal("3.5"), since=date(2015, 1, 1))


def test_peg_yields_the_official_rate_dated_the_business_day() -> None:
    wednesday = pegged_rates("cbt", TMT_PEG, date(2023, 9, 27))
    assert (wednesday.base, wednesday.as_of, wednesday.per_unit) == (
        "TMT",
        date(2023, 9, 27),
        {"USD": Decimal("3.5")},
    )
    assert usd_rates(wednesday, ("TMT",))["TMT"] == 1 / Decimal("3.5")
    # A weekend is the Friday's rate again: no new as-of date, so no new quote.
    assert pegged_rates("cbt", TMT_PEG, date(2023, 9, 30)).as_of == date(2023, 9, 29)
    assert pegged_rates("cbt", TMT_PEG, date(2023, 10, 1)).as_of == date(2023, 9, 29)


def test_peg_has_no_rate_before_it_took_effect() -> None:
    with pytest.raises(RatesError, match="pegged only since 2015-01-01"):
        pegged_rates("cbt", TMT_PEG, date(2014, 12, 31))


# --- generic JSON, configured by field paths --------------------------------------------


def test_json_records_on_a_real_third_party_dump_with_fixed_nominals() -> None:
    # The dump omits NBK's quant: UZS is quoted per 100, which the config supplies.
    spec = JsonRatesSpec(
        rates_path="",
        quotation="in_base",
        base="KZT",
        date_field="date",
        code_field="code",
        value_field="value",
        nominals={"UZS": 100},
    )
    rates = parse_json_rates(NBK_DERIVED_FILE.read_bytes(), spec, "nbk-dump")
    assert (rates.provider, rates.base, rates.as_of) == ("nbk-dump", "KZT", date(2023, 11, 18))
    assert rates.per_unit["USD"] == Decimal("462.79")
    assert rates.per_unit["UZS"] == Decimal("3.77") / 100
    assert usd_rates(rates, ("KZT",))["KZT"] == 1 / Decimal("462.79")


def test_json_rates_per_base_object() -> None:
    doc = b'{"meta": {"base": "USD", "day": "2024-05-02"}, "rates": {"KZT": 443.9, "UZS": "12650"}}'
    spec = JsonRatesSpec(
        rates_path="rates", quotation="per_base", base_path="meta.base", date_path="meta.day"
    )
    rates = parse_json_rates(doc, spec, "api")
    assert (rates.base, rates.as_of) == ("USD", date(2024, 5, 2))
    usd = usd_rates(rates, ("KZT", "UZS"))
    assert usd == {"KZT": 1 / Decimal("443.9"), "UZS": 1 / Decimal(12650)}


def test_json_spec_needs_one_base_and_one_date() -> None:
    with pytest.raises(ValueError, match="base"):
        JsonRatesSpec(rates_path="rates", quotation="per_base", date_path="d")


# --- detection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (REALDATA / "cbr-xml-daily-2023-09-27.xml", "cbr"),
        (NBK_FILE, "nbk"),
        (NBKR_FILE, "nbkr"),
        (CBU_FILE, "cbu"),
        (NBT_FIXTURE, "nbt"),
    ],
)
def test_detect_names_the_provider_of_each_document(path: Path, kind: str) -> None:
    assert detect(path.read_bytes()) == kind


@pytest.mark.parametrize("path", [REALDATA / "feed-heise-developer.atom", NBK_DERIVED_FILE])
def test_detect_refuses_documents_of_no_known_provider(path: Path) -> None:
    with pytest.raises(WrongFormat, match="not a rates document of a known provider"):
        detect(path.read_bytes())


def test_parse_document_names_quotes_after_the_configured_provider() -> None:
    provider = Provider(name="cbr-mirror", kind="cbr", url="x")
    content = (REALDATA / "cbr-xml-daily-2023-09-27.xml").read_bytes()
    assert parse_document(provider, content).provider == "cbr-mirror"


# --- bad input --------------------------------------------------------------------------

HTML_ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head>"
    b"<body><h1>Service Unavailable</h1><p>Try again later.<br></p></body></html>"
)


@pytest.mark.parametrize("kind", sorted(DOCUMENT_PARSERS))
def test_an_html_error_page_is_no_rates_document(kind: str) -> None:
    with pytest.raises(WrongFormat):
        DOCUMENT_PARSERS[kind](HTML_ERROR_PAGE)
    with pytest.raises(WrongFormat):
        detect(HTML_ERROR_PAGE)


@pytest.mark.parametrize("parse", [parse_nbk, parse_nbkr, parse_cbr, parse_nbt])
def test_a_root_element_of_another_name_is_quoted_short(
    parse: Callable[[bytes], OfficialRates],
) -> None:
    # A name in a namespace of 1.9 MB: the error is the provider's, in /readyz and each span.
    document = b"<?xml version='1.0'?><rates xmlns='urn:" + b"x" * 1_900_000 + b"'/>"
    with pytest.raises(WrongFormat, match=re.escape("root element is '{urn:xxx")) as refused:
        parse(document)
    assert len(str(refused.value)) < 200


def test_a_document_missing_the_dollar_yields_no_quotes() -> None:
    text = NBKR_FILE.read_text(encoding="utf-8")
    without_usd = text.replace(
        '<Currency ISOCode="USD">\n<Nominal>1</Nominal>\n<Value>84,7999</Value>\n</Currency>\n', ""
    )
    rates = parse_nbkr(without_usd.encode())
    assert "USD" not in rates.per_unit
    with pytest.raises(RatesError, match="has no USD rate"):
        usd_rates(rates, CENTRAL_ASIA)


def test_a_document_missing_a_currency_still_yields_the_others() -> None:
    entries = [e for e in json.loads(CBU_FILE.read_bytes()) if e["Ccy"] != "TJS"]
    usd = usd_rates(parse_cbu(json.dumps(entries).encode()), CENTRAL_ASIA)
    assert set(usd) == {"KGS", "KZT", "UZS", "TMT"}


@pytest.mark.parametrize("bad", ["0", "0.00", "-334.41"])
def test_a_zero_or_negative_rate_is_left_out(bad: str) -> None:
    text = NBK_FILE.read_text(encoding="utf-8").replace(
        "<title>KGS</title><pubDate>18.04.16</pubDate><description>4.78</description>",
        f"<title>KGS</title><pubDate>18.04.16</pubDate><description>{bad}</description>",
    )
    rates = parse_nbk(text.encode())
    assert "KGS" not in rates.per_unit
    assert any(p.startswith("KGS:") and "not positive" in p for p in rates.problems)


def test_a_comma_in_a_point_decimal_document_is_refused_not_guessed() -> None:
    # 334,41 could be 334.41 or 33441: either guess may be a hundredfold error.
    text = NBK_FILE.read_text(encoding="utf-8").replace(
        "<description>334.41</description>", "<description>334,41</description>"
    )
    rates = parse_nbk(text.encode())
    assert "USD" not in rates.per_unit
    assert "USD: '334,41' uses ',', but this provider writes decimals with '.'" in rates.problems


def test_a_point_in_a_comma_decimal_document_is_refused_not_guessed() -> None:
    text = NBKR_FILE.read_text(encoding="utf-8").replace("84,7999", "84.7999")
    rates = parse_nbkr(text.encode())
    assert "USD" not in rates.per_unit
    assert rates.problems == ["USD: '84.7999' uses '.', but this provider writes decimals with ','"]


def test_a_currency_listed_twice_with_two_values_is_left_out() -> None:
    entries = [
        ("USD", "90,5", "1"),
        ("USD", "9050,0", "1"),
        ("EUR", "98,0", "1"),
        ("EUR", "9800,0", "100"),  # the same rate per unit, written for 100 units
    ]
    per_unit, problems = per_unit_values(entries, ",")
    assert per_unit == {"EUR": Decimal("98.0")}
    assert problems == ["USD: listed more than once, with different values"]


CBR_FILE = REALDATA / "cbr-xml-daily-2023-09-27.xml"


def _cbu_without_nominal(nominal: str | None) -> bytes:
    entries = json.loads(CBU_FILE.read_text(encoding="utf-8"))
    for entry in entries:
        if entry["Ccy"] == "KZT":
            del entry["Nominal"]
            if nominal is not None:
                entry["Nominal"] = nominal
    return json.dumps(entries).encode()


CBU_JSON_SPEC = JsonRatesSpec(
    rates_path="",
    quotation="in_base",
    base="UZS",
    date_field="Date",
    date_format="%d.%m.%Y",
    code_field="Ccy",
    value_field="Rate",
    nominal_field="Nominal",
)


@pytest.mark.parametrize("nominal", [None, "", " "])
@pytest.mark.parametrize(
    ("path", "before", "written", "parse", "code"),
    [
        (CBR_FILE, "<CharCode>KZT</CharCode>\n", "<Nominal>100</Nominal>", parse_cbr, "KZT"),
        (NBKR_FILE, '<Currency ISOCode="KZT">\n', "<Nominal>1</Nominal>", parse_nbkr, "KZT"),
        (NBK_FILE, "<description>11.59</description>", "<quant>100</quant>", parse_nbk, "UZS"),
        (NBT_FIXTURE, "<CharCode>KZT</CharCode>\n", "<Nominal>1</Nominal>", parse_nbt, "KZT"),
    ],
)
def test_an_xml_entry_without_its_nominal_is_left_out_not_read_as_one_unit(
    path: Path,
    before: str,
    written: str,
    parse: Callable[[bytes], OfficialRates],
    code: str,
    nominal: str | None,
) -> None:
    text = path.read_text(encoding="utf-8")
    assert before + written in text
    tag = written[1 : written.index(">")]
    element = "" if nominal is None else f"<{tag}>{nominal}</{tag}>"
    rates = parse(text.replace(before + written, before + element).encode())
    assert code not in rates.per_unit
    assert f"{code}: no nominal: the units the value is for are not written" in rates.problems
    assert rates.per_unit.keys() == parse(path.read_bytes()).per_unit.keys() - {code}


@pytest.mark.parametrize("nominal", [None, ""])
def test_a_json_entry_without_its_nominal_is_left_out_not_read_as_one_unit(
    nominal: str | None,
) -> None:
    content = _cbu_without_nominal(nominal)
    for rates in (parse_cbu(content), parse_json_rates(content, CBU_JSON_SPEC, "cbu-json")):
        assert "KZT" not in rates.per_unit
        assert "KZT: no nominal: the units the value is for are not written" in rates.problems
        assert "USD" in rates.per_unit


def test_a_number_decimal_would_guess_at_is_left_out() -> None:
    # Decimal() reads an underscore, Arabic-Indic and full-width digits; no bank writes them.
    text = NBKR_FILE.read_text(encoding="utf-8").replace("0,2024", "0_2024")
    rates = parse_nbkr(text.encode())
    assert "KZT" not in rates.per_unit
    assert rates.problems == ["KZT: not a number in plain digits: '0_2024'"]
    for bad in ("٠,٢٠٢٤", "０,２０２４"):
        with pytest.raises(RatesError, match="not a number in plain digits"):
            official_decimal(bad, ",")
    assert official_decimal("0,2024", ",") == Decimal("0.2024")


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_left_out(bad: str) -> None:
    text = NBKR_FILE.read_text(encoding="utf-8").replace("0,2024", bad)
    rates = parse_nbkr(text.encode())
    assert "KZT" not in rates.per_unit
    assert rates.problems == [f"KZT: not a finite number: {bad!r}"]
