"""National Bank of Kazakhstan: KZT per `quant` units, point decimals.

Two shapes of the same data. The rates RSS (`rss/rates_all.xml`) dates each
item on its own, with a two-digit year, and keeps defunct currencies with their
last date (LVL 31.12.13):

    <rss><channel><item><title>USD</title><pubDate>18.04.16</pubDate>
      <description>334.41</description><quant>1</quant>...</item>

The by-date service (`rss/get_rates.cfm?fdate=dd.mm.yyyy`) dates the document
once: `<rates><date>18.04.2016</date><item>...same item fields...</item></rates>`.

The as-of date of an RSS document is the date most of its items carry; items
dated otherwise are left out, so a currency NBK stopped quoting years ago never
passes for today's rate.
"""

from __future__ import annotations

from datetime import date, datetime

from lxml import etree

from services.ratefeed.parsers.parsing import commonest_date, parse_xml, per_unit_values
from services.ratefeed.providers import OfficialRates, RatesError, WrongFormat

PROVIDER = "nbk"
WHAT = "National Bank of Kazakhstan rates document"


def parse_nbk(content: bytes) -> OfficialRates:
    root = parse_xml(content, WHAT)
    if root.tag == "rss" and root.find("channel/item/quant") is not None:
        items = root.findall("channel/item")
        as_of, items = _dated_items(items)
    elif root.tag == "rates" and root.find("item/quant") is not None:
        items = root.findall("item")
        as_of = _date(root.findtext("date"), "%d.%m.%Y")
    else:
        raise WrongFormat(f"not a {WHAT}: root element is <{root.tag!s}> without quant items")
    per_unit, problems = per_unit_values(
        (
            (
                (item.findtext("title") or "").strip(),
                item.findtext("description"),
                item.findtext("quant"),
            )
            for item in items
        ),
        ".",
    )
    left_out = len(root.findall(".//item")) - len(items)
    if left_out:
        problems.append(f"{left_out} items dated other than {as_of} left out")
    if not per_unit:
        msg = f"no usable rate in the {WHAT} of {as_of}"
        raise RatesError(msg)
    return OfficialRates(PROVIDER, "KZT", as_of, per_unit, problems)


def _dated_items(items: list[etree._Element]) -> tuple[date, list[etree._Element]]:
    dated = [(_date(item.findtext("pubDate"), "%d.%m.%y"), item) for item in items]
    if not dated:
        msg = f"no items in the {WHAT}"
        raise RatesError(msg)
    return commonest_date(dated)


def _date(text: str | None, pattern: str) -> date:
    try:
        return datetime.strptime((text or "").strip(), pattern).date()
    except ValueError as exc:
        raise RatesError(f"no valid date in the {WHAT}: {text!r}") from exc
