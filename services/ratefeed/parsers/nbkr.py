"""National Bank of the Kyrgyz Republic daily rates (`XML/daily.xml`): KGS per `Nominal` units.

    <CurrencyRates Name="Daily Exchange Rates" Date="14.12.2020">
      <Currency ISOCode="USD"><Nominal>1</Nominal><Value>84,7999</Value></Currency>

Comma decimals; declared windows-1251, which lxml honours. Only four currencies
(USD, EUR, KZT, RUB): UZS, TJS and TMT come from the other providers.
"""

from __future__ import annotations

from datetime import datetime

from services.ratefeed.parsers.parsing import child_text, parse_xml, per_unit_values
from services.ratefeed.providers import OfficialRates, RatesError, WrongFormat
from shared.decimals import shown

PROVIDER = "nbkr"
WHAT = "National Bank of the Kyrgyz Republic rates document"


def parse_nbkr(content: bytes) -> OfficialRates:
    root = parse_xml(content, WHAT)
    if root.tag != "CurrencyRates":
        raise WrongFormat(f"not a {WHAT}: root element is {shown(root.tag)}")
    raw_date = root.get("Date")
    try:
        as_of = datetime.strptime(raw_date or "", "%d.%m.%Y").date()
    except ValueError as exc:
        raise RatesError(f"CurrencyRates has no valid Date attribute: {shown(raw_date)}") from exc
    per_unit, problems = per_unit_values(
        (
            (
                (currency.get("ISOCode") or "").strip(),
                child_text(currency, "Value"),
                child_text(currency, "Nominal"),
            )
            for currency in root.iter("Currency")
        ),
        ",",
    )
    if not per_unit:
        msg = f"no usable Currency entry in the {WHAT} of {as_of}"
        raise RatesError(msg)
    return OfficialRates(PROVIDER, "KGS", as_of, per_unit, problems)
