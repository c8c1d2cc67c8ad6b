"""National Bank of Tajikistan daily XML (`kurs/export_xml.php`): TJS per `Nominal` units.

    <ValCurs Date="27.09.2023" name="Official exchange rates">
      <Valute ID="840"><CharCode>USD</CharCode><Nominal>1</Nominal>
        <Name>...</Name><Value>10.9443</Value></Valute>

The same element names as the Bank of Russia's XML_daily, which is how the two
are told apart: Bank of Russia `Valute` IDs are its internal `R0…` codes. No
captured NBT document is bundled (tests use a fixture written in this shape), so
the date is read in either of the two forms the bank has been seen to use,
`dd.mm.yyyy` or ISO `yyyy-mm-dd`; decimals are points.
"""

from __future__ import annotations

from datetime import date, datetime

from services.ratefeed.parsers.parsing import child_text, parse_xml, per_unit_values
from services.ratefeed.providers import OfficialRates, RatesError, WrongFormat
from shared.decimals import shown

PROVIDER = "nbt"
WHAT = "National Bank of Tajikistan rates document"


def parse_nbt(content: bytes) -> OfficialRates:
    root = parse_xml(content, WHAT)
    if root.tag != "ValCurs":
        raise WrongFormat(f"not a {WHAT}: root element is {shown(root.tag)}")
    valutes = list(root.iter("Valute"))
    if any((v.get("ID") or "").startswith("R0") for v in valutes):
        raise WrongFormat(f"not a {WHAT}: Bank of Russia currency IDs")
    as_of = _date(root.get("Date"))
    per_unit, problems = per_unit_values(
        (
            (
                (child_text(v, "CharCode") or "").strip(),
                child_text(v, "Value"),
                child_text(v, "Nominal"),
            )
            for v in valutes
        ),
        ".",
    )
    if not per_unit:
        msg = f"no usable Valute entry in the {WHAT} of {as_of}"
        raise RatesError(msg)
    return OfficialRates(PROVIDER, "TJS", as_of, per_unit, problems)


def _date(text: str | None) -> date:
    for pattern in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime((text or "").strip(), pattern).date()
        except ValueError:
            continue
    msg = f"ValCurs has no valid Date attribute: {shown(text)}"
    raise RatesError(msg)
