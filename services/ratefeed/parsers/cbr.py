"""Bank of Russia daily rates (XML_daily.asp): RUB per `Nominal` units, comma decimals.

    <ValCurs Date="27.09.2023" name="Foreign Currency Market">
      <Valute ID="R01335"><CharCode>KZT</CharCode><Nominal>100</Nominal>
        <Value>20,3042</Value>...</Valute>

The live service declares windows-1251; lxml honours the declaration, and a
document without one is read as UTF-8.
"""

from __future__ import annotations

from datetime import datetime

from services.ratefeed.parsers.parsing import child_text, parse_xml, per_unit_values
from services.ratefeed.providers import OfficialRates, RatesError, WrongFormat
from shared.decimals import shown

PROVIDER = "cbr"


def parse_cbr(content: bytes) -> OfficialRates:
    root = parse_xml(content, "Bank of Russia rates document")
    if root.tag != "ValCurs":
        msg = f"not a Bank of Russia rates document: root element is {shown(root.tag)}"
        raise WrongFormat(msg)
    raw_date = root.get("Date")
    try:
        as_of = datetime.strptime(raw_date or "", "%d.%m.%Y").date()
    except ValueError as exc:
        raise RatesError(f"ValCurs has no valid Date attribute: {shown(raw_date)}") from exc

    per_unit, problems = per_unit_values(
        (
            (
                (child_text(valute, "CharCode") or "").strip(),
                child_text(valute, "Value"),
                child_text(valute, "Nominal"),
            )
            for valute in root.iter("Valute")
        ),
        ",",
    )
    if not per_unit:
        msg = "no usable Valute entries"
        raise RatesError(msg)
    return OfficialRates(PROVIDER, "RUB", as_of, per_unit, problems)
